"""The PyPI JSON API (``/pypi/<project>/json``), used by poetry, pip-audit and others.

Built from Havarti's rows for private projects; proxied for upstream ones with
every file URL pointing at Havarti, so the files are cached like any other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from havarti.distributions import normalized, same_version
from havarti.domain.pages import file_url, format_time, sort_versions
from havarti.domain.ports import PrivateProjects
from havarti.errors import NotFound, UpstreamError
from havarti.records import FileDetails
from havarti.upstream.client import UpstreamClient

JSON_API_LIMIT = 64 * 2**20


def _python_version(row: FileDetails) -> str:
    if row.packagetype == "sdist":
        return "source"
    parts = row.filename[:-4].split("-")
    return parts[-3] if len(parts) >= 5 else "py3"


def _file_entry(row: FileDetails, base_url: str, project: str) -> dict[str, Any]:
    return {
        "filename": row.filename,
        "url": base_url + file_url(project, row.filename, relative_to_page=False),
        "digests": {"sha256": row.sha256, "md5": row.md5, "blake2b_256": row.blake2_256},
        "md5_digest": row.md5,
        "packagetype": row.packagetype,
        "python_version": _python_version(row),
        "requires_python": row.requires_python,
        "size": row.size,
        "upload_time": row.upload_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": format_time(row.upload_time),
        "yanked": row.yanked,
        "yanked_reason": row.yanked_reason,
        "has_sig": False,
    }


def private_project_json(projects: PrivateProjects, name: str, version: str | None,
                         base_url: str) -> dict | None:
    """The JSON document of a private project, or None when it is not private."""
    found = projects.private_files(name)
    if found is None:
        return None
    project, rows = found
    releases: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r.filename):
        releases.setdefault(row.version, []).append(_file_entry(row, base_url, project.name))
    versions = sort_versions(list(releases))
    unyanked = [v for v in versions if not all(f["yanked"] for f in releases[v])]
    latest = (unyanked or versions)[-1]
    if version is not None:
        matches = [v for v in versions if same_version(v, version)]
        if not matches:
            raise NotFound(f"no version {version!r} of {project.name!r}")
        latest = matches[0]
    meta = next(r for r in rows if r.version == latest)
    info = {
        "name": project.display_name, "version": latest, "summary": meta.summary,
        "description": meta.description, "description_content_type": meta.description_content_type,
        "requires_python": meta.requires_python, "yanked": all(f["yanked"] for f in releases[latest]),
        "package_url": f"{base_url}/projects/{project.name}/",
        "project_url": f"{base_url}/projects/{project.name}/",
        "release_url": f"{base_url}/projects/{project.name}/{latest}/",
    }
    document: dict[str, Any] = {"info": info, "urls": releases[latest], "last_serial": project.serial,
                                "vulnerabilities": []}
    if version is None:
        document["releases"] = releases
    return document


def upstream_project_json(upstream: UpstreamClient, name: str, version: str | None,
                          base_url: str, cutoff: datetime | None = None,
                          offered: Callable[[str, str | None], bool] | None = None) -> dict:
    """Upstream's JSON document with every file URL pointing at Havarti.

    With a ``cutoff`` (COOLDOWN), files uploaded after it are left out, as on the pages;
    so are files ``offered(filename, version)`` refuses (a policy).
    """
    canonical = normalized(name)
    path = f"{canonical}/{version}/json" if version else f"{canonical}/json"
    try:
        document = json.loads(upstream.get_bytes(upstream.json_api_url(path), JSON_API_LIMIT))
    except ValueError:
        raise UpstreamError(f"upstream sent unreadable JSON for {canonical}") from None

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
    return document


def _uploaded_after(entry: dict[str, Any], cutoff: datetime) -> bool:
    # A file without a readable upload time cannot be judged young: it stays.
    try:
        uploaded = datetime.fromisoformat(str(entry["upload_time_iso_8601"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return False
    return uploaded > cutoff
