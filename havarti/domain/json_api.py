"""The PyPI JSON API (``/pypi/<project>/json``), used by poetry, pip-audit and others.

Three ways to one document shape (``info``, ``urls``, ``releases``, ``last_serial``,
``vulnerabilities``), with every file URL pointing at Havarti so the files are
cached like any other:

- private projects: from Havarti's rows, ``info`` from the core metadata uploaded
  (METADATA / PKG-INFO), as PyPI builds it;
- upstream projects: upstream's own document, proxied;
- upstream projects whose upstream has no JSON API (a plain simple index): from
  the simple page, ``info`` from the newest version's ``.metadata`` (PEP 658).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from packaging.metadata import parse_email

from havarti.distributions import normalized, same_version
from havarti.domain.pages import file_url, format_time, sort_versions
from havarti.domain.ports import PrivateProjects
from havarti.errors import NotFound, UpstreamError
from havarti.records import FileDetails, PageFile, ProjectListing
from havarti.upstream.client import UpstreamClient

log = logging.getLogger(__name__)

JSON_API_LIMIT = 64 * 2**20

#: Every key of PyPI's ``info``, with the value PyPI gives when the metadata says nothing:
#: clients index ``info["requires_dist"]`` and the like without a default.
INFO_DEFAULTS: dict[str, Any] = {
    "author": None, "author_email": None, "bugtrack_url": None, "classifiers": [],
    "description": "", "description_content_type": None, "docs_url": None,
    "download_url": None, "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
    "dynamic": None, "home_page": None, "keywords": None, "license": None,
    "license_expression": None, "license_files": None, "maintainer": None,
    "maintainer_email": None, "name": None, "package_url": None, "platform": None,
    "project_url": None, "project_urls": None, "provides_extra": None, "release_url": None,
    "requires_dist": None, "requires_python": None, "summary": None, "version": None,
    "yanked": False, "yanked_reason": None,
}
#: Core metadata fields (packaging's RawMetadata keys) copied into ``info`` as they are.
_COPIED = ("author", "author_email", "classifiers", "description", "description_content_type",
           "download_url", "dynamic", "home_page", "license", "license_expression",
           "license_files", "maintainer", "maintainer_email", "project_urls", "provides_extra",
           "requires_dist", "requires_python", "summary")


def info_from_metadata(raw: bytes | None) -> dict[str, Any]:
    """``info`` fields from core metadata bytes, read leniently (as PyPI shows what was uploaded).

    Fields absent from the metadata keep PyPI's defaults; None gives the defaults only.
    """
    info = copy.deepcopy(INFO_DEFAULTS)
    if not raw:
        return info
    try:
        parsed, _unparsed = parse_email(raw)
    except (ValueError, UnicodeError):  # not metadata at all: PyPI's defaults
        return info
    fields: dict[str, Any] = dict(parsed)
    for key in _COPIED:
        value = fields.get(key)
        if value is not None:
            info[key] = value
    if fields.get("keywords"):
        # PyPI shows the Keywords field as written: one comma-separated string.
        info["keywords"] = ",".join(fields["keywords"])
    if fields.get("platforms"):
        info["platform"] = ",".join(fields["platforms"])
    for key in ("name", "version"):
        if fields.get(key):
            info[key] = fields[key]
    return info


def _python_version(filename: str, packagetype: str) -> str:
    if packagetype == "sdist":
        return "source"
    parts = filename[:-4].split("-")
    return parts[-3] if len(parts) >= 5 else "py3"


def _file_entry(filename: str, url: str, packagetype: str, digests: dict[str, str | None],
                requires_python: str | None, size: int | None, uploaded: datetime | None,
                yanked: bool | str) -> dict[str, Any]:
    return {
        "filename": filename,
        "url": url,
        "digests": digests,
        "md5_digest": digests.get("md5"),
        "packagetype": packagetype,
        "python_version": _python_version(filename, packagetype),
        "requires_python": requires_python,
        "size": size,
        "upload_time": uploaded.strftime("%Y-%m-%dT%H:%M:%S") if uploaded else None,
        "upload_time_iso_8601": format_time(uploaded) if uploaded else None,
        "yanked": yanked is not False,
        "yanked_reason": (yanked or None) if yanked is not False else None,
        "has_sig": False,
    }


def _row_entry(row: FileDetails, base_url: str, project: str) -> dict[str, Any]:
    return _file_entry(row.filename, base_url + file_url(project, row.filename, relative_to_page=False),
                       row.packagetype, {"sha256": row.sha256, "md5": row.md5,
                                         "blake2b_256": row.blake2_256},
                       row.requires_python, row.size, row.upload_time,
                       (row.yanked_reason or "") if row.yanked else False)


def _document(name: str, display_name: str, releases: dict[str, list[dict[str, Any]]],
              version: str | None, base_url: str, serial: int,
              metadata: Callable[[str], bytes | None]) -> dict[str, Any]:
    """The document for ``releases`` (version -> file entries); ``metadata(version)``
    gives the core metadata of the version ``info`` describes."""
    versions = sort_versions(list(releases))
    if not versions:
        raise NotFound(f"no files in project {name!r}")
    unyanked = [v for v in versions if not all(f["yanked"] for f in releases[v])]
    shown = (unyanked or versions)[-1]
    if version is not None:
        matches = [v for v in versions if same_version(v, version)]
        if not matches:
            raise NotFound(f"no version {version!r} of {name!r}")
        shown = matches[0]
    files = releases[shown]
    info = info_from_metadata(metadata(shown))
    yanked = all(f["yanked"] for f in files)
    info.update({
        "name": info["name"] or display_name, "version": shown,
        "yanked": yanked,
        "yanked_reason": next((f["yanked_reason"] for f in files if f["yanked_reason"]), None)
        if yanked else None,
        "package_url": f"{base_url}/projects/{name}/",
        "project_url": f"{base_url}/projects/{name}/",
        "release_url": f"{base_url}/projects/{name}/?version={shown}",
    })
    document: dict[str, Any] = {"info": info, "last_serial": serial, "urls": files,
                                "vulnerabilities": []}
    if version is None:
        document["releases"] = releases
    return document


def private_releases(projects: PrivateProjects, name: str, base_url: str
                     ) -> tuple[ProjectListing | None, list[FileDetails],
                                dict[str, list[dict[str, Any]]]]:
    """A private project, its uploaded files and their JSON entries by version
    (None, [], {} when Havarti has no private project of that name)."""
    found = projects.private_files(name)
    if found is None:
        return None, [], {}
    project, files = found
    rows = sorted(files, key=lambda r: r.filename)
    releases: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        releases.setdefault(row.version, []).append(_row_entry(row, base_url, project.name))
    return project, rows, releases


def private_project_json(projects: PrivateProjects, name: str, version: str | None,
                         base_url: str, metadata: Callable[[FileDetails], bytes | None]
                         ) -> dict | None:
    """The JSON document of a private project, or None when it is not private.

    ``metadata(row)`` reads a file's core metadata (None when it cannot be read).
    """
    project, rows, releases = private_releases(projects, name, base_url)
    if project is None:
        return None

    def version_metadata(shown: str) -> bytes | None:
        # A wheel's METADATA first: an sdist's PKG-INFO may leave dependencies out.
        candidates = sorted((r for r in rows if r.version == shown),
                            key=lambda r: (r.packagetype != "bdist_wheel", r.filename))
        for row in candidates:
            data = metadata(row)
            if data is not None:
                return data
        return None

    return _document(project.name, project.display_name, releases, version, base_url,
                     project.serial, version_metadata)


def upstream_project_json(upstream: UpstreamClient, name: str, version: str | None,
                          base_url: str, cutoff: datetime | None = None,
                          offered: Callable[[str, str | None], bool] | None = None) -> dict:
    """Upstream's JSON document with every file URL pointing at Havarti.

    With a ``cutoff`` (COOLDOWN), files uploaded after it are left out, as on the pages;
    so are files ``offered(filename, version)`` refuses (a policy).
    Raises UpstreamNotFound when upstream answers 404 (no such project, or no JSON
    API at all), UpstreamError when it fails or sends something that is not a document.
    """
    canonical = normalized(name)
    path = f"{canonical}/{version}/json" if version else f"{canonical}/json"
    try:
        document = json.loads(upstream.get_bytes(upstream.json_api_url(path), JSON_API_LIMIT))
    except ValueError:
        raise UpstreamError(f"upstream sent unreadable JSON for {canonical}") from None
    if not isinstance(document, dict) or not isinstance(document.get("info"), dict):
        raise UpstreamError(f"upstream's JSON for {canonical} is not a JSON API document")

    def kept_of(files: list[dict[str, Any]], release: str | None) -> list[dict[str, Any]]:
        kept = [entry for entry in files if (cutoff is None or not _uploaded_after(entry, cutoff))
                and (offered is None or offered(str(entry.get("filename", "")), release))]
        for entry in kept:
            if "filename" in entry:
                entry["url"] = base_url + file_url(canonical, entry["filename"], relative_to_page=False)
        return kept

    if "urls" in document:
        info = document.get("info") or {}
        document["urls"] = kept_of(document["urls"] or [],
                                   info.get("version") if isinstance(info, dict) else None)
    releases = document.get("releases") or {}
    for release, files in releases.items():
        releases[release] = kept_of(files, release)
    # What PyPI always sends, for upstreams that send less: clients index these keys.
    document["info"] = {**copy.deepcopy(INFO_DEFAULTS), **document["info"]}
    document.setdefault("vulnerabilities", [])
    return document


def simple_project_json(name: str, files: Iterable[PageFile], version: str | None,
                        base_url: str, metadata: Callable[[PageFile], bytes | None]) -> dict:
    """The document of an upstream project whose upstream has no JSON API, from its
    simple page's ``files``; ``metadata(file)`` fetches a file's ``.metadata`` (PEP 658)."""
    canonical = normalized(name)
    releases: dict[str, list[dict[str, Any]]] = {}
    by_name: dict[str, PageFile] = {}
    for f in sorted(files, key=lambda f: f.filename):
        if not f.version:
            continue
        by_name[f.filename] = f
        packagetype = "bdist_wheel" if f.filename.endswith(".whl") else "sdist"
        digests: dict[str, str | None] = {"sha256": f.sha256, "md5": f.hashes.get("md5"),
                                          "blake2b_256": f.hashes.get("blake2b_256")}
        releases.setdefault(f.version, []).append(_file_entry(
            f.filename, base_url + file_url(canonical, f.filename, relative_to_page=False),
            packagetype, digests, f.requires_python, f.size, f.upload_datetime, f.yanked))

    def version_metadata(shown: str) -> bytes | None:
        # Only files upstream offers metadata for (PEP 658); wheels first, as their
        # METADATA lists the dependencies an sdist's PKG-INFO may leave out.
        offered = sorted((by_name[e["filename"]] for e in releases[shown]),
                         key=lambda f: (not f.filename.endswith(".whl"), f.filename))
        for f in offered:
            if f.core_metadata is not False:
                return metadata(f)
        return None

    return _document(canonical, canonical, releases, version, base_url, -1, version_metadata)


def add_private_files(document: dict[str, Any], releases: dict[str, list[dict[str, Any]]],
                      version: str | None) -> dict[str, Any]:
    """A merged project (UPSTREAM_MERGE or merged at runtime): upstream's document with the
    private files added; a private file wins over an upstream file of its name."""
    private_names = {f["filename"] for files in releases.values() for f in files}

    def merge(files: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [f for f in files if f.get("filename") not in private_names] + extra

    if "releases" in document:
        merged = dict(document["releases"] or {})
        for release, files in releases.items():
            merged[release] = merge(merged.get(release, []), files)
        document["releases"] = merged
    shown = version or document["info"].get("version")
    extra = next((files for release, files in releases.items()
                  if shown is not None and same_version(release, shown)), [])
    document["urls"] = merge(document.get("urls") or [], extra)
    return document


def _uploaded_after(entry: dict[str, Any], cutoff: datetime) -> bool:
    # A file without a readable upload time cannot be judged young: it stays.
    try:
        uploaded = datetime.fromisoformat(str(entry["upload_time_iso_8601"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return False
    return uploaded > cutoff
