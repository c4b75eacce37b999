"""The project page as data, and its two renderings: PEP 503 HTML and PEP 691 JSON.

One structure, built once per change, rendered to bytes once per format; the
web layer serves those bytes as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from html import escape
from urllib.parse import quote

from packaging.version import Version

#: PEP 700 (size, upload-time, versions) raised the simple API to 1.1.
API_VERSION = "1.1"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


@dataclass(frozen=True)
class PageFile:
    """One file as a project page lists it."""

    filename: str
    #: Havarti's own URL, relative to the project page (host independent, so bytes cache).
    url: str
    hashes: dict[str, str]
    version: str | None = None
    requires_python: str | None = None
    #: False, or the reason (may be empty) when yanked (PEP 592).
    yanked: bool | str = False
    #: False, or the hashes of the core metadata file (PEP 658/714).
    core_metadata: bool | dict[str, str] = False
    size: int | None = None
    upload_time: datetime | None = None
    #: "private", "cached" or "upstream": for the UI, not rendered in the simple API.
    origin: str = "upstream"


class PagePart:
    """Files rendered once: a page is a join of its parts, so rebuilding one costs little.

    A project page has at most two parts (private files, upstream files); the
    upstream part is kept per upstream page (in memory and in the database), so a
    private upload, a stale flag or a restart re-renders nothing of a 5,000-file
    upstream list. ``files`` may be produced on first use.
    """

    def __init__(self, html: str, json_entries: str, versions: tuple[str, ...], count: int,
                 files: tuple[PageFile, ...] | None = None,
                 load: Callable[[], tuple[PageFile, ...]] | None = None) -> None:
        #: One ``<a>`` line per file.
        self.html = html
        #: The files' JSON objects, comma-separated (no brackets).
        self.json = json_entries
        self.versions = versions
        self.count = count
        self._files = files
        self._load = load

    @cached_property
    def files(self) -> tuple[PageFile, ...]:
        if self._files is not None:
            return self._files
        return self._load() if self._load is not None else ()

    def dumps(self) -> str:
        """The rendering (not the files) as JSON, for storing."""
        return json.dumps({"html": self.html, "json": self.json, "versions": self.versions,
                           "count": self.count})

    @classmethod
    def loads(cls, data: str, load: Callable[[], tuple[PageFile, ...]]) -> PagePart:
        stored = json.loads(data)
        return cls(stored["html"], stored["json"], tuple(stored["versions"]), stored["count"],
                   load=load)


def render_part(files: list[PageFile] | tuple[PageFile, ...]) -> PagePart:
    ordered = tuple(sorted(files, key=lambda f: f.filename))
    html = "".join(_file_html(f) for f in ordered)
    entries = json.dumps([_file_json(f) for f in ordered], separators=(",", ":"))[1:-1]
    versions = tuple(sort_versions({f.version for f in ordered if f.version}))
    return PagePart(html, entries, versions, len(ordered), files=ordered)


@dataclass
class ProjectPage:
    name: str
    parts: tuple[PagePart, ...] = ()
    #: Upstream could not be reached; the page is the last one stored.
    stale: bool = False

    @classmethod
    def of_files(cls, name: str, files: list[PageFile], stale: bool = False) -> ProjectPage:
        return cls(name, (render_part(files),) if files else (), stale)

    @property
    def files(self) -> list[PageFile]:
        return [f for part in self.parts for f in part.files]

    @property
    def versions(self) -> list[str]:
        if len(self.parts) == 1:
            return list(self.parts[0].versions)
        return sort_versions({v for part in self.parts for v in part.versions})


def file_url(project: str, filename: str, relative_to_page: bool = True) -> str:
    path = f"files/{quote(project)}/{quote(filename)}"
    return f"../../{path}" if relative_to_page else f"/{path}"


@lru_cache(maxsize=100_000)
def _version_key(v: str) -> tuple[int, Version | str]:
    # Parsing is most of the cost of sorting a big project's versions; a project's
    # versions are sorted again on every change, so parse each string once.
    try:
        return (1, Version(v))
    except ValueError:  # InvalidVersion, or a number too long for int()
        return (0, v)


def sort_versions(versions: set[str] | list[str]) -> list[str]:
    return sorted(set(versions), key=_version_key)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, as PEP 700 shows."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat is C code; a 5,000-file page formats 5,000 of these.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _file_html(f: PageFile) -> str:
    href = f.url
    if "sha256" in f.hashes:
        href += f"#sha256={f.hashes['sha256']}"
    attrs = [f'href="{escape(href)}"']
    if f.requires_python:
        attrs.append(f'data-requires-python="{escape(f.requires_python)}"')
    if f.yanked is not False:
        attrs.append(f'data-yanked="{escape(f.yanked if isinstance(f.yanked, str) else "")}"')
    if isinstance(f.core_metadata, dict) and f.core_metadata:
        name, value = next(iter(sorted(f.core_metadata.items())))
        # PEP 714's name, plus PEP 658's for older clients.
        attrs.append(f'data-core-metadata="{name}={escape(value)}"')
        attrs.append(f'data-dist-info-metadata="{name}={escape(value)}"')
    elif f.core_metadata is True:
        attrs.append('data-core-metadata="true"')
        attrs.append('data-dist-info-metadata="true"')
    return f"    <a {' '.join(attrs)}>{escape(f.filename)}</a><br>\n"


def _file_json(f: PageFile) -> dict:
    entry: dict = {"filename": f.filename, "url": f.url, "hashes": f.hashes}
    if f.requires_python:
        entry["requires-python"] = f.requires_python
    # PEP 691: a reason must be a non-empty string; no reason is plain true.
    entry["yanked"] = f.yanked if f.yanked is False or f.yanked else True
    if f.core_metadata is not False:
        entry["core-metadata"] = f.core_metadata
        entry["data-dist-info-metadata"] = f.core_metadata
    if f.size is not None:
        entry["size"] = f.size
    if f.upload_time is not None:
        entry["upload-time"] = format_time(f.upload_time)
    return entry


def render_html(page: ProjectPage) -> bytes:
    head = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>Links for {escape(page.name)}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {escape(page.name)}</h1>\n"
    )
    return (head + "".join(part.html for part in page.parts) + "  </body>\n</html>\n").encode()


def render_json(page: ProjectPage) -> bytes:
    files = ",".join(part.json for part in page.parts if part.json)
    return (f'{{"meta":{{"api-version":"{API_VERSION}"}},"name":{json.dumps(page.name)},'
            f'"files":[{files}],"versions":{json.dumps(page.versions)}}}').encode()


def render_index_html(names: list[str]) -> bytes:
    body = "\n".join(f'    <a href="{escape(quote(n))}/">{escape(n)}</a><br>' for n in names)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
        f"{body}\n  </body>\n</html>\n"
    ).encode()


def render_index_json(names: list[str]) -> bytes:
    return json.dumps({"meta": {"api-version": API_VERSION},
                       "projects": [{"name": n} for n in names]},
                      separators=(",", ":")).encode()
