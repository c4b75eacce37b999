"""The package index as one service: pages, files and uploads, for every front end.

The web handlers, the CLI and the background jobs all call this; it holds the
database, storage, upstream client, mirror policy and the rendered-page cache.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, select, update

from havarti.cache import BoundedCache
from havarti.config import Settings
from havarti.db import Database, unless_full
from havarti.db.models import ORIGIN_UPLOADED, File, Project
from havarti.db.policies import PolicyRepository
from havarti.db.tokens import TokenRepository
from havarti.domain import catalog, json_api
from havarti.domain.access import NamePattern
from havarti.domain.distributions import belongs_to, normalized, read_core_metadata
from havarti.domain.fetch import Download, Fetcher
from havarti.domain.mirror import Mirror, UpstreamState
from havarti.domain.pages import (
    PagePart,
    ProjectPage,
    render_html,
    render_index_html,
    render_index_json,
    render_json,
    render_part,
    render_upstream_part,
)
from havarti.domain.policy import Policy, Rule, read_policy_file
from havarti.domain.uploads import Upload, accept_upload
from havarti.errors import (
    Forbidden,
    InvalidUpload,
    NotFound,
    StorageUnavailable,
    UpstreamError,
    UpstreamNotFound,
)
from havarti.jobs.base import JobRunner
from havarti.storage import Digests, HashingReader, Storage, StorageError, metadata_key
from havarti.storage.base import LocalPath
from havarti.upstream.client import UpstreamClient, UpstreamFile
from havarti.upstream.origins import metadata_url

log = logging.getLogger(__name__)

_PROJECT_ROW = select(Project.id, Project.serial, Project.private).where(
    Project.name == bindparam("name"))
#: How long a process uses its policy snapshot before reading the stored rules again: the
#: page path must not query them per request. A change shows at once in the process that
#: made it, within this many seconds in the others.
POLICY_REFRESH = 2.0
#: last_served is written at most this often per file: a hot file must not cost a write per hit.
LAST_SERVED_RESOLUTION = timedelta(minutes=10)


@dataclass(frozen=True)
class RenderedPage:
    """A project page, built once per change and rendered to bytes in both formats."""

    page: ProjectPage
    html: bytes
    json: bytes
    #: Each representation's ETag, from its bytes: the same page has the same tag everywhere.
    html_etag: str
    json_etag: str
    #: Why the page is served without upstream's confirmation, or None.
    stale_reason: str | None = None
    #: Each representation gzip-compressed, made on first demand (shared by stale copies).
    _compressed: dict[bool, bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def stale(self) -> bool:
        return self.stale_reason is not None

    def gzipped(self, json: bool) -> bytes:
        """The JSON (or HTML) bytes gzip-compressed, once per page: the same bytes every time."""
        found = self._compressed.get(json)
        if found is None:
            # mtime=0: the bytes, and so their ETag, depend on the page alone.
            found = self._compressed[json] = gzip.compress(self.json if json else self.html,
                                                           compresslevel=6, mtime=0)
        return found

    @classmethod
    def of(cls, page: ProjectPage) -> RenderedPage:
        html, json = render_html(page), render_json(page)
        return cls(page, html, json, _etag(html), _etag(json))


def _etag(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


@dataclass(frozen=True)
class StoredFile:
    """A file Havarti holds: serve it from storage."""

    filename: str
    key: str
    size: int
    sha256: str
    local: LocalPath | None
    redirect: str | None


@dataclass(frozen=True)
class StreamingFile:
    """A miss being fetched: the client reads along with the download."""

    filename: str
    size: int | None
    sha256: str | None
    chunks: Iterator[bytes]
    download: Download


@dataclass(frozen=True)
class RedirectFile:
    """FILE_MISS=redirect: send the client upstream; a job caches the file."""

    filename: str
    url: str


@dataclass(frozen=True)
class MetadataFile:
    filename: str
    data: bytes


class PackageIndex:
    def __init__(self, settings: Settings, db: Database, storage: Storage,
                 upstream: UpstreamClient, jobs: JobRunner | None = None) -> None:
        self.settings = settings
        self.db = db
        self.storage = storage
        self.upstream = upstream
        cache_bytes = settings.page_cache_mb * 2**20
        # The budget split: rendered pages are served most; states hold parsed files.
        self.mirror = Mirror(db, upstream, settings.index_ttl, settings.revalidate_wait,
                             settings.not_found_ttl, cache_bytes // 2)
        self.fetcher = Fetcher(db, storage, upstream, Path(settings.package_cache) / "spool",
                               settings.max_file_size)
        self.jobs = jobs
        self.tokens = TokenRepository(db)
        self.policies = PolicyRepository(db)
        self._file_rules: tuple[Rule, ...] = tuple(
            read_policy_file(settings.policy_file) if settings.policy_file else ())
        self._policy: tuple[float, Policy] | None = None
        self._policy_guard = threading.Lock()
        #: Keyed by what the page is made of: the private files' serial, the upstream digest.
        self._pages: BoundedCache[tuple, RenderedPage] = BoundedCache(
            cache_bytes // 2, lambda r: len(r.html) + len(r.json))

    # Pages

    def project_page(self, name: str) -> RenderedPage:
        """The project's page: private files, upstream files (unless shadowed), or both.

        Raises NotFound, or UpstreamError when upstream fails and nothing is stored.
        """
        canonical = normalized(name)
        policy = self.policy()
        project = self.db.first(_PROJECT_ROW, name=canonical)
        private = project is not None and project.private
        upstream: UpstreamState | None = None
        stale_reason: str | None = None
        if self._asks_upstream(canonical, private, policy):
            try:
                upstream = self.mirror.state(canonical)
                stale_reason = upstream.stale_reason
            except UpstreamNotFound:
                if not private:
                    raise NotFound(f"no project named {canonical!r}") from None
            except UpstreamError as exc:
                if not private:
                    raise
                stale_reason = f"upstream unreachable: {exc}"
        key = (canonical, project.serial if project else -1,
               upstream.token if upstream else None, self._cooldown_epoch(), policy.digest)
        rendered = self._pages.get(key)
        if rendered is None:
            page = self._build_page(canonical, project.id if private and project else None,
                                    upstream, policy)
            rendered = self._pages.put(key, RenderedPage.of(page))
        return replace(rendered, stale_reason=stale_reason) if stale_reason else rendered

    # Access: reserved names and policies

    def policy(self, fresh: bool = False) -> Policy:
        """The rules and reservations in force: POLICY_FILE, RESERVED_NAMES and the database's.

        Read from the database at most every POLICY_REFRESH seconds (``fresh``: now).
        """
        now = time.monotonic()
        found = self._policy
        if not fresh and found is not None and now - found[0] < POLICY_REFRESH:
            return found[1]
        with self._policy_guard:
            found = self._policy
            if fresh or found is None or time.monotonic() - found[0] >= POLICY_REFRESH:
                found = (time.monotonic(), self.policies.snapshot(
                    self._file_rules, self.settings.reserved_names))
                self._policy = found
            return found[1]

    def policy_changed(self) -> None:
        """After a change of rules or reservations: this process sees it at its next request."""
        self._policy = None

    def reserved_names(self) -> tuple[NamePattern, ...]:
        """The names and prefixes that come only from private uploads (read fresh: for uploads)."""
        return self.policy(fresh=True).reserved

    def _asks_upstream(self, canonical: str, private: bool, policy: Policy) -> bool:
        """Whether upstream is asked about ``canonical``: the one place that decides.

        Never for a reserved name; else unless private uploads shadow it (UPSTREAM_MERGE
        merges). Raises NotFound for a reserved name nothing was uploaded to, and
        Forbidden when a policy denies the whole project and nothing private is there.
        """
        reserved = policy.reserved_by(canonical)
        if reserved is not None:
            if not private:
                raise NotFound(f"{canonical!r} is reserved ({reserved.text}) for private uploads "
                               "and has none yet")
            return False
        if private and canonical not in self.settings.upstream_merge:
            return False
        refusal = policy.project_refusal(canonical)
        if refusal is not None:
            if not private:
                raise Forbidden(refusal)
            return False
        return True

    def _cooldown_epoch(self) -> int | None:
        # A cooldown makes the page depend on the clock: rebuild at most once a minute.
        return int(time.time() // 60) if self.settings.cooldown else None

    def _build_page(self, name: str, private_project_id: int | None,
                    upstream: UpstreamState | None, policy: Policy) -> ProjectPage:
        parts: list[PagePart] = []
        private_names: set[str] = set()
        if private_project_id is not None:
            with self.db.session() as session:
                # Plain rows, not ORM objects: five times cheaper for a 5,000-file project.
                rows = session.execute(select(*catalog.PAGE_COLUMNS).where(
                    File.project_id == private_project_id, File.origin == ORIGIN_UPLOADED))
                private = [catalog.page_file(row, name) for row in rows]
            private_names = {f.filename for f in private}
            parts.append(render_part(private))
        if upstream is not None:
            if private_names or self._cooldown_cutoff(name) is not None or policy.touches(name):
                # Merged (UPSTREAM_MERGE): a private file wins over an upstream one of its name.
                parts.append(render_upstream_part(name, [
                    f for f in self._visible(name, upstream.files, policy)
                    if f.filename not in private_names]))
            else:
                # Every upstream file, rendered when the mirror stored the page.
                parts.append(upstream.part)
        return ProjectPage(name=name, parts=tuple(p for p in parts if p.count))

    def _cooldown_cutoff(self, name: str) -> datetime | None:
        """Upstream files of ``name`` uploaded after this are hidden (COOLDOWN), or None."""
        cooldown = self.settings.cooldown
        if not cooldown or name in self.settings.cooldown_exempt:
            return None
        return datetime.now(UTC) - cooldown

    def _visible(self, name: str, files: tuple[UpstreamFile, ...],
                 policy: Policy) -> list[UpstreamFile]:
        """Upstream files offered: the one function deciding which (cooldown, then policy)."""
        cutoff = self._cooldown_cutoff(name)
        # A file without an upload time cannot be judged young: it stays.
        return [f for f in files
                if (cutoff is None or f.upload_datetime is None or f.upload_datetime <= cutoff)
                and policy.file_refusal(name, f.version, f.filename) is None]

    def index(self) -> tuple[bytes, bytes]:
        """The /simple/ page: every project Havarti can serve without upstream (HTML, JSON)."""
        with self.db.session() as session:
            names = catalog.project_names(session)
        return render_index_html(names), render_index_json(names)

    # Files

    def open_file(self, project: str, filename: str,
                  body: bool = True) -> StoredFile | StreamingFile | RedirectFile:
        """Where the client gets ``filename`` from: storage, a shared download, or upstream.

        ``body=False`` (a HEAD request): a stored file is described by its row alone,
        on every backend: no storage request and no redirect, because a presigned or
        temp URL is signed for GET and the object store would refuse a HEAD with it.
        """
        canonical = normalized(project)
        stored = self._stored(canonical, filename, body)
        if stored is not None:
            return stored
        upstream_file = self._upstream_file(canonical, filename)
        # With the broker down, a redirect would cache nothing: stream instead.
        if self.settings.file_miss == "redirect" and self.jobs is not None:
            # Clients are sent only where Havarti itself would fetch from.
            self.upstream.check_file_url(upstream_file.url)
            if self.jobs.enqueue("cache_file", project=canonical, filename=filename):
                return RedirectFile(filename, upstream_file.url)
        download, chunks = self.fetcher.open(canonical, upstream_file)
        self._bound_cache()
        return StreamingFile(filename, upstream_file.size, upstream_file.sha256, chunks, download)

    def _stored(self, canonical: str, filename: str, body: bool = True) -> StoredFile | None:
        now = datetime.now(UTC)
        with self.db.session() as session:
            row = session.execute(
                select(File.id, File.storage_key, File.size, File.sha256, File.stored,
                       File.last_served, Project.name, Project.private, File.origin,
                       File.version)
                .join(Project).where(File.filename == filename)).first()
            if row is None or row.name != canonical:
                return None
        if row.origin != ORIGIN_UPLOADED:
            # A cached upstream file answers to the policy in force, not the one it was
            # cached under; a reserved name's come only from uploads.
            self._refuse_upstream_file(canonical, row.version, filename, row.private)
        if not row.stored:
            return None
        if body and (row.last_served is None or now - row.last_served > LAST_SERVED_RESOLUTION):
            # For eviction's sake only: a full disk must not keep the file from being served.
            with unless_full("last_served"), self.db.session() as session:
                session.execute(update(File).where(File.id == row.id).values(last_served=now))
        if not body:
            return StoredFile(filename, row.storage_key, row.size, row.sha256, None, None)
        try:
            local = self.storage.local_path(row.storage_key)
            redirect = None if local else self.storage.url(row.storage_key, filename)
        except StorageError as exc:
            raise StorageUnavailable(f"storage unavailable: {exc}") from None
        return StoredFile(filename, row.storage_key, row.size, row.sha256, local, redirect)

    def _refuse_upstream_file(self, canonical: str, version: str | None, filename: str,
                              private: bool) -> None:
        """NotFound / Forbidden unless upstream's ``filename`` may be offered."""
        policy = self.policy()
        if not self._asks_upstream(canonical, private, policy):
            raise NotFound(f"no file {filename!r} in project {canonical!r}")
        refusal = policy.file_refusal(canonical, version, filename)
        if refusal is not None:
            raise Forbidden(refusal)

    def _upstream_file(self, canonical: str, filename: str) -> UpstreamFile:
        with self.db.session() as session:
            private = bool(session.scalar(select(Project.private).where(Project.name == canonical)))
        policy = self.policy()
        if not self._asks_upstream(canonical, private, policy):
            raise NotFound(f"no file {filename!r} in project {canonical!r}")
        try:
            state = self.mirror.state(canonical, revalidate=False)
            found = state.file(filename)
            if found is None:
                # A release newer than our stored page: ask upstream once more.
                found = self.mirror.state(canonical).file(filename)
        except UpstreamNotFound:
            raise NotFound(f"no project named {canonical!r}") from None
        # A page stored before foreign entries were dropped may still list one: not offered.
        if found is None or not belongs_to(filename, canonical):
            raise NotFound(f"no file {filename!r} in project {canonical!r}")
        refusal = policy.file_refusal(canonical, found.version, filename)
        if refusal is not None:
            raise Forbidden(refusal)
        if found not in self._visible(canonical, (found,), policy):
            raise NotFound(f"no file {filename!r} in project {canonical!r}")
        return found

    def cache_file(self, project: str, filename: str) -> str:
        """Make sure ``filename`` is stored (the cache_file job); idempotent."""
        canonical = normalized(project)
        if self._stored(canonical, filename) is not None:
            return f"{filename}: already cached"
        row = self.fetcher.fetch(canonical, self._upstream_file(canonical, filename))
        self._bound_cache()
        return f"{filename}: cached {row.size} bytes"

    def _bound_cache(self) -> None:
        """The cache grows on a miss: queue an eviction pass (deduplicated while queued)."""
        if self.settings.cache_max_size is not None and self.jobs is not None:
            self.jobs.enqueue("evict")

    def metadata(self, project: str, filename: str) -> MetadataFile:
        """The core metadata file (PEP 658) of ``filename``: stored, or fetched, verified and kept.

        A file Havarti holds carries its metadata inside, so that is read before
        upstream is asked: it works while upstream is down.
        """
        canonical = normalized(project)
        with self.db.session() as session:
            row = session.execute(
                select(File.metadata_sha256, File.storage_key, File.stored, Project.name,
                       Project.private, File.origin, File.version)
                .join(Project).where(File.filename == filename)).first()
        if row is not None and row.name == canonical and row.origin != ORIGIN_UPLOADED:
            self._refuse_upstream_file(canonical, row.version, filename, row.private)
        # A cached upstream file of a project that became private is shadowed: not held.
        held = row if row is not None and row.name == canonical and (
            row.origin == ORIGIN_UPLOADED or not row.private) else None
        expected: str | None = None
        upstream_file: UpstreamFile | None = None
        if held is not None and held.metadata_sha256:
            expected = held.metadata_sha256
        else:
            upstream_file = self._upstream_file(canonical, filename)
            if upstream_file.core_metadata is False:
                raise NotFound(f"no metadata file for {filename!r}")
            if isinstance(upstream_file.core_metadata, dict):
                expected = upstream_file.core_metadata.get("sha256")
        try:
            if expected:
                key = metadata_key(expected, filename)
                if self.storage.exists(key):
                    return MetadataFile(filename, self.storage.read_bytes(key))
                if held is not None and held.stored:
                    data = self._metadata_inside(held.storage_key, filename)
                    if data is not None and hashlib.sha256(data).hexdigest() == expected:
                        self.storage.write(key, io.BytesIO(data), len(data))
                        return MetadataFile(filename, data)
            if upstream_file is None:
                upstream_file = self._upstream_file(canonical, filename)
            data = self.upstream.get_bytes(metadata_url(upstream_file.url))
            if expected:
                # Verified while written: a mismatch raises and nothing is kept.
                self.storage.write(metadata_key(expected, filename),
                                   HashingReader(io.BytesIO(data), Digests(expect_sha256=expected)),
                                   len(data))
        except StorageError as exc:
            raise StorageUnavailable(f"storage unavailable: {exc}") from None
        return MetadataFile(filename, data)

    def _metadata_inside(self, key: str, filename: str) -> bytes | None:
        """The METADATA / PKG-INFO inside a stored distribution, or None when unreadable."""
        local = self.storage.local_path(key)
        with (open(local.path, "rb") if local else tempfile.TemporaryFile()) as archive:
            if local is None:
                for chunk in self.storage.open(key):
                    archive.write(chunk)
            try:
                return read_core_metadata(archive, filename)
            except InvalidUpload:
                return None

    def project_json(self, project: str, version: str | None, base_url: str) -> dict:
        """The PyPI JSON API document: built for a private project, else upstream's.

        Upstream's has its file URLs pointing at Havarti and the cooldown applied;
        a merged project (UPSTREAM_MERGE) upstream does not know gets the private one.
        """
        canonical = normalized(project)
        policy = self.policy()
        merged = canonical in self.settings.upstream_merge

        def private() -> dict | None:
            with self.db.session() as session:
                return json_api.private_project_json(session, canonical, version, base_url)

        reserved = policy.reserved_by(canonical)
        document = None if merged and reserved is None else private()
        if document is not None:
            return document
        if reserved is not None:
            raise NotFound(f"{canonical!r} is reserved ({reserved.text}) for private uploads "
                           "and has none yet")
        refusal = policy.project_refusal(canonical)
        if refusal is not None:
            document = private() if merged else None
            if document is None:
                raise Forbidden(refusal)
            return document
        try:
            return json_api.upstream_project_json(
                self.upstream, canonical, version, base_url, self._cooldown_cutoff(canonical),
                offered=lambda filename, v: policy.file_refusal(canonical, v, filename) is None)
        except UpstreamNotFound:
            document = private() if merged else None
            if document is None:
                raise
            return document

    # Uploads

    def upload(self, upload: Upload) -> File:
        return accept_upload(self.db, self.storage, upload, self.settings.max_upload_size)

    def find_project(self, name: str) -> Project | None:
        with self.db.session() as session:
            return catalog.find_project(session, name)

    def close(self) -> None:
        self.upstream.close()
        self.db.dispose()

