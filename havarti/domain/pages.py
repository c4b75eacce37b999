"""The project page as data, and its two renderings: PEP 503 HTML and PEP 691 JSON.

One structure, built once per change, rendered to bytes once per format; the
web layer serves those bytes as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from html import escape
from urllib.parse import quote

import msgspec
from packaging.version import Version

from havarti.records import PageFile

#: PEP 700 (size, upload-time, versions) raised the simple API to 1.1.
API_VERSION = "1.1"
#: Characters quote() leaves alone in a filename.
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
_json_encoder = msgspec.json.Encoder()


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
        #: One ``<a>`` line per file, and the files' JSON objects comma-separated (no brackets).
        self.html, self.json = html, json_entries
        self.versions = versions
        self.count = count
        self._files = files
        self._load = load

    @cached_property
    def files(self) -> tuple[PageFile, ...]:
        """The part's files (read on first use when the part was stored)."""
        if self._files is not None:
            return self._files
        return self._load() if self._load is not None else ()

    def dumps(self) -> str:
        """The rendering (not the files) as JSON, for storing."""
        return json.dumps({"html": self.html, "json": self.json, "versions": self.versions,
                           "count": self.count})

    @classmethod
    def loads(cls, data: str, load: Callable[[], tuple[PageFile, ...]]) -> PagePart:
        """A part stored by :meth:`dumps`; its files come from ``load`` when asked."""
        stored = json.loads(data)
        return cls(stored["html"], stored["json"], tuple(stored["versions"]), stored["count"],
                   load=load)


def render_part(project: str, files: Iterable[PageFile],
                versions: list[str] | None = None) -> PagePart:
    """Render ``files`` of ``project`` once, linked at Havarti's own URLs.

    ``versions`` (PEP 700) when upstream listed them, else computed.
    """
    ordered = tuple(sorted(files, key=lambda f: f.filename))
    prefix = file_url(project, "")
    # Most filenames need no quoting: skip quote() for them (5,000 files, one page).
    urls = [prefix + (f.filename if _URL_SAFE.fullmatch(f.filename) else quote(f.filename))
            for f in ordered]
    html = "".join([_file_html(f, url) for f, url in zip(ordered, urls, strict=True)])
    entries = _json_encoder.encode(
        [_file_json(f, url) for f, url in zip(ordered, urls, strict=True)]).decode()[1:-1]
    if versions is None:
        versions = sort_versions({f.version for f in ordered if f.version})
    return PagePart(html, entries, tuple(versions), len(ordered), files=ordered)


@dataclass
class ProjectPage:
    """A project page as data: its parts, rendered once each."""

    name: str
    parts: tuple[PagePart, ...] = ()
    #: Upstream could not be reached; the page is the last one stored.
    stale: bool = False

    @classmethod
    def of_files(cls, name: str, files: list[PageFile], stale: bool = False) -> ProjectPage:
        """A page of ``files`` alone."""
        return cls(name, (render_part(name, files),) if files else (), stale)

    @property
    def files(self) -> list[PageFile]:
        """Every file of the page."""
        return [f for part in self.parts for f in part.files]

    @property
    def versions(self) -> list[str]:
        """Every version of the page, sorted (PEP 700)."""
        if len(self.parts) == 1:
            return list(self.parts[0].versions)
        return sort_versions({v for part in self.parts for v in part.versions})


def file_url(project: str, filename: str, relative_to_page: bool = True) -> str:
    """Havarti's URL of a file: relative to the project page, or from the root."""
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
    """``versions`` without repeats, in PEP 440 order (unparsable ones first)."""
    return sorted(set(versions), key=_version_key)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, as PEP 700 shows."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat is C code; a 5,000-file page formats 5,000 of these.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


#: Most files of a project share a few requires-python values: escape each once.
_escape_repeated = lru_cache(maxsize=4096)(escape)
#: What html.escape changes; hashes and most filenames hold none of it.
_HTML_SPECIAL = re.compile(r"[&<>\"']")
#: PEP 700's form, as format_time writes it: passed through as it is.
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _escaped(text: str) -> str:
    # A 5,000-file page escapes 20,000 strings: most need nothing, and a search is cheaper.
    return escape(text) if _HTML_SPECIAL.search(text) else text


def _upload_time(f: PageFile) -> str:
    """The file's upload time in PEP 700's form (upstream's string when it already is)."""
    if _CANONICAL_TIME.fullmatch(f.upload_time):  # type: ignore[arg-type]
        return f.upload_time  # type: ignore[return-value]
    return format_time(f.upload_datetime)  # type: ignore[arg-type]


def _file_html(f: PageFile, url: str) -> str:
    # The href is Havarti's own quoted URL: nothing in it to escape.
    href = url
    if "sha256" in f.hashes:
        href += f"#sha256={_escaped(f.hashes['sha256'])}"
    attrs = f'href="{href}"'
    if f.requires_python:
        attrs += f' data-requires-python="{_escape_repeated(f.requires_python)}"'
    if f.yanked is not False:
        attrs += f' data-yanked="{escape(f.yanked if isinstance(f.yanked, str) else "")}"'
    if isinstance(f.core_metadata, dict) and f.core_metadata:
        name, value = (next(iter(f.core_metadata.items())) if len(f.core_metadata) == 1
                       else min(f.core_metadata.items()))
        # PEP 714's name, plus PEP 658's for older clients.
        value = f"{_escaped(name)}={_escaped(value)}"
        attrs += f' data-core-metadata="{value}" data-dist-info-metadata="{value}"'
    elif f.core_metadata is True:
        attrs += ' data-core-metadata="true" data-dist-info-metadata="true"'
    return f"    <a {attrs}>{_escaped(f.filename)}</a><br>\n"


def _file_json(f: PageFile, url: str) -> dict:
    entry: dict = {"filename": f.filename, "url": url, "hashes": f.hashes}
    if f.requires_python:
        entry["requires-python"] = f.requires_python
    # PEP 691: a reason must be a non-empty string; no reason is plain true.
    entry["yanked"] = f.yanked if f.yanked is False or f.yanked else True
    if f.core_metadata is not False:
        entry["core-metadata"] = f.core_metadata
        entry["data-dist-info-metadata"] = f.core_metadata
    if f.size is not None:
        entry["size"] = f.size
    if f.upload_time:
        entry["upload-time"] = _upload_time(f)
    return entry


def render_html(page: ProjectPage) -> bytes:
    """The PEP 503 HTML page."""
    head = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>Links for {escape(page.name)}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {escape(page.name)}</h1>\n"
    )
    return (head + "".join(part.html for part in page.parts) + "  </body>\n</html>\n").encode()


def render_json(page: ProjectPage) -> bytes:
    """The PEP 691 JSON page."""
    files = ",".join(part.json for part in page.parts if part.json)
    return (f'{{"meta":{{"api-version":"{API_VERSION}"}},"name":{json.dumps(page.name)},'
            f'"files":[{files}],"versions":{json.dumps(page.versions)}}}').encode()


def render_index_html(names: list[str]) -> bytes:
    """The /simple/ root page in HTML."""
    body = "\n".join(f'    <a href="{escape(quote(n))}/">{escape(n)}</a><br>' for n in names)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
        f"{body}\n  </body>\n</html>\n"
    ).encode()


def render_index_json(names: list[str]) -> bytes:
    """The /simple/ root page in PEP 691 JSON."""
    return json.dumps({"meta": {"api-version": API_VERSION},
                       "projects": [{"name": n} for n in names]},
                      separators=(",", ":")).encode()
