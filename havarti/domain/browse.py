"""What the web UI lists: project search, and a project's versions and description.

Plain data for the templates; no HTTP here. Project names are stored
normalised (PEP 503), so a normalised query matches with plain LIKE.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from havarti.cache import BoundedCache
from havarti.distributions import normalized
from havarti.domain.pages import ProjectPage, sort_versions
from havarti.domain.ports import BrowseStore
from havarti.domain.stats import Overview, StatsRecorder, overview
from havarti.errors import unless_full
from havarti.records import PageFile, ProjectListing

PER_PAGE = 50
#: Versions a project page shows at once: one with thousands of versions stays a small page.
VERSIONS_PER_PAGE = 50
KINDS = ("all", "private", "cached")
#: How long the headline figures (totals over every file and day) are reused.
SUMMARY_SECONDS = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class SearchResult:
    """One page of a project search."""

    query: str
    kind: str
    page: int
    total: int
    rows: list[ProjectListing]
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        """How many pages the search has (at least one)."""
        return max(1, -(-self.total // self.per_page))


def search_projects(projects: BrowseStore, query: str = "", kind: str = "all", page: int = 1,
                    per_page: int = PER_PAGE) -> SearchResult:
    """Projects Havarti holds whose normalised name contains ``query``; prefix matches first."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    needle = normalized(query.strip()) if query.strip() else ""
    page = max(1, page)
    total, rows = projects.search(needle, kind, page, per_page)
    return SearchResult(needle, kind, page, total, rows, per_page)


@dataclass(frozen=True)
class Release:
    """One version's files, for the project page."""

    version: str
    files: list[PageFile]
    #: Every file of the version is yanked.
    yanked: bool = False


def latest(releases: list[Release]) -> str | None:
    """The newest version with a file that is not yanked (what pip would pick)."""
    for release in releases:
        if not release.yanked and release.version != UNKNOWN_VERSION:
            return release.version
    return None


UNKNOWN_VERSION = "(unknown version)"


def releases(page: ProjectPage) -> list[Release]:
    """The page's files grouped by version, newest version first."""
    grouped: dict[str, list[PageFile]] = {}
    for f in page.files:
        grouped.setdefault(f.version or UNKNOWN_VERSION, []).append(f)
    ordered = sort_versions([v for v in grouped if v != UNKNOWN_VERSION])[::-1]
    if UNKNOWN_VERSION in grouped:
        ordered.append(UNKNOWN_VERSION)
    return [Release(v, grouped[v], all(f.yanked is not False for f in grouped[v]))
            for v in ordered]


@dataclass(frozen=True)
class Description:
    """A private project's summary and its description as safe HTML."""

    summary: str | None
    html: str | None


class DescriptionCache:
    """Rendered descriptions by (project, serial): rendering a README is slow, serials are cheap."""

    def __init__(self, projects: BrowseStore, size: int = 256) -> None:
        self.projects = projects
        self._items: BoundedCache[tuple[str, int], Description] = BoundedCache(
            16 * 2**20, lambda d: len(d.html or "") + len(d.summary or "") + 64, max_entries=size)

    def get(self, project: str) -> tuple[ProjectListing | None, Description]:
        """The project's row and its rendered description (empty unless it is private)."""
        canonical = normalized(project)
        row = self.projects.listing(canonical)
        if row is None or not row.private:
            return row, Description(None, None)
        key = (canonical, row.serial)
        cached = self._items.get(key)
        if cached is not None:
            return row, cached
        newest = self.projects.newest_description(canonical)
        description = Description(None, None)
        if newest is not None:
            summary, text, content_type = newest
            description = Description(summary, render_description(text, content_type))
        return row, self._items.put(key, description)


def render_description(text: str | None, content_type: str | None) -> str | None:
    """The description as safe HTML, as PyPI renders it: readme-renderer, sanitised by nh3.

    Markdown (GFM or CommonMark) and reStructuredText are rendered; anything
    else, and reST that does not parse, is shown as escaped plain text.
    """
    if not text or not text.strip():
        return None
    import readme_renderer.rst
    import readme_renderer.txt

    mime, _, params = (content_type or "text/x-rst").partition(";")
    mime = mime.strip().lower()
    html: str | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mime == "text/markdown":
            import readme_renderer.markdown

            variant = "GFM"
            for param in params.split(";"):
                key, _, value = param.partition("=")
                if key.strip().lower() == "variant" and value.strip() in ("GFM", "CommonMark"):
                    variant = value.strip()
            html = readme_renderer.markdown.render(text, variant=variant)
        elif mime == "text/x-rst":
            html = readme_renderer.rst.render(text)
        if html is None:
            html = readme_renderer.txt.render(text)
    return html


@dataclass(frozen=True)
class ProjectCounts:
    """How many projects Havarti holds, private and cached-only."""

    private: int
    cached: int


def project_counts(projects: BrowseStore) -> ProjectCounts:
    """How many projects Havarti holds: private, and cached-only."""
    counted = projects.counts()
    return ProjectCounts(counted.get(True, 0), counted.get(False, 0))


class Catalog:
    """What the web UI lists, each answer kept as briefly as it may be.

    Search, project counts, descriptions, cached filenames, a project page's
    files grouped by version, and the download statistics. The answers that
    total over every file or day are reused for SUMMARY_SECONDS; descriptions
    and groupings are kept per version of what they are made of.
    """

    def __init__(self, projects: BrowseStore, stats: StatsRecorder,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.projects = projects
        self.stats = stats
        self.descriptions = DescriptionCache(projects)
        self._clock = clock
        self._summaries: dict[str, tuple[float, Any]] = {}
        self._groupings: BoundedCache[str, list[Release]] = BoundedCache(
            16 * 2**20, lambda r: 200 * sum(len(x.files) for x in r) + 256, 64)
        #: Pieces the UI renders from what is kept here, keyed by what they are made of.
        self.pieces: BoundedCache[tuple, Any] = BoundedCache(
            16 * 2**20, lambda p: len(getattr(p, "html", b"")) + 256, 128)

    def _recent(self, name: str, compute: Callable[[], T], fresh: bool = False) -> T:
        """``compute()``, reused for SUMMARY_SECONDS: totals over every file are not free."""
        now = self._clock()
        entry = self._summaries.get(name)
        if fresh or entry is None or entry[0] < now:
            entry = self._summaries[name] = (now + SUMMARY_SECONDS, compute())
        return entry[1]

    def search(self, query: str = "", kind: str = "all", page: int = 1) -> SearchResult:
        """Projects whose normalised name contains ``query``; prefix matches first."""
        return search_projects(self.projects, query, kind, page)

    def counts(self) -> ProjectCounts:
        """How many projects Havarti holds (reused for SUMMARY_SECONDS)."""
        return self._recent("counts", lambda: project_counts(self.projects))

    def overview(self, fresh: bool = False) -> Overview:
        """Download statistics (reused for SUMMARY_SECONDS); ``fresh`` writes this process's
        latest counts first, so a page right after a download shows it."""
        flushed = 0
        if fresh:
            # Kept for later when the disk is full.
            with unless_full("download counts"):
                flushed = self.stats.flush()
        return self._recent("overview", lambda: overview(self.stats.counts), fresh=flushed > 0)

    def description(self, project: str) -> tuple[ProjectListing | None, Description]:
        """The project's row and rendered description."""
        return self.descriptions.get(project)

    def cached_filenames(self, project: str) -> frozenset[str]:
        """Upstream files of ``project`` that Havarti holds in its storage."""
        return self.projects.cached_filenames(normalized(project))

    def releases(self, key: str, page: ProjectPage) -> list[Release]:
        """``page``'s files by version (see :func:`releases`), kept under ``key`` (its ETag):
        grouping and sorting 5,000 versions takes longer than a page may."""
        found = self._groupings.get(key)
        if found is None:
            found = self._groupings.put(key, releases(page))
        return found
