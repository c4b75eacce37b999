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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import msgspec

from havarti.cache import BoundedCache
from havarti.config import Settings
from havarti.distributions import NamePattern, belongs_to, normalized, read_core_metadata
from havarti.domain import access, json_api, manage
from havarti.domain import policy as policies
from havarti.domain.browse import Catalog
from havarti.domain.coordination import Leases
from havarti.domain.fetch import Fetcher
from havarti.domain.mirror import Mirror, UpstreamState
from havarti.domain.pages import (
    PagePart,
    ProjectPage,
    render_html,
    render_index_html,
    render_index_json,
    render_json,
    render_part,
)
from havarti.domain.policy import Policy, Rule, read_policy_file
from havarti.domain.ports import (
    AuditStore,
    FileStore,
    JobQueue,
    LeaseStore,
    PolicyStore,
    ProjectStore,
    StatsStore,
    TokenStore,
    UpstreamPageStore,
)
from havarti.domain.stats import CACHE_HIT, FETCHED, UPSTREAM, StatsRecorder
from havarti.domain.text import is_project_name
from havarti.domain.uploads import Upload, accept_upload
from havarti.domain.visibility import Visibility
from havarti.errors import (
    Forbidden,
    HavartiError,
    InvalidUpload,
    NotFound,
    StorageUnavailable,
    UpstreamError,
    UpstreamNotFound,
)
from havarti.records import (
    PRIVATE,
    AuditEntry,
    FileDetails,
    PageFile,
    ProjectMode,
    Reservation,
    TokenRecord,
    UploadedFile,
)
from havarti.records import UPSTREAM as UPSTREAM_FILE
from havarti.storage import Digests, HashingReader, Storage, StorageError, metadata_key
from havarti.storage.base import LocalPath
from havarti.upstream.client import UpstreamClient
from havarti.upstream.origins import metadata_url

log = logging.getLogger(__name__)

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
        """Whether the page is served without upstream's confirmation."""
        return self.stale_reason is not None

    def gzipped(self, json: bool) -> bytes:
        """The JSON (or HTML) bytes gzip-compressed, once per page: the same bytes every time."""
        found = self._compressed.get(json)
        if found is None:
            # mtime=0: the bytes, and so their ETag, depend on the page alone. Level 1: a
            # page's repetitive entries shrink almost as well as at 6, at a quarter of the CPU.
            found = self._compressed[json] = gzip.compress(self.json if json else self.html,
                                                           compresslevel=1, mtime=0)
        return found

    @classmethod
    def of(cls, page: ProjectPage) -> RenderedPage:
        """``page`` rendered to bytes in both formats, with their ETags."""
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


class RedirectFile(NamedTuple):
    """FILE_MISS=redirect: send the client upstream; a job caches the file."""

    filename: str
    url: str


class Uploaded(NamedTuple):
    """A stored upload, and what the uploader should be warned of (or None)."""

    file: UploadedFile
    warning: str | None


class MetadataFile(NamedTuple):
    """A distribution's core metadata file (PEP 658), verified."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Stores:
    """The persistence the index works through (havarti.db builds them over one database)."""

    projects: ProjectStore
    files: FileStore
    pages: UpstreamPageStore
    leases: LeaseStore
    audit: AuditStore
    stats: StatsStore
    tokens: TokenStore
    policies: PolicyStore
    #: Lets go of the connections behind the stores.
    close: Callable[[], None]


class PackageIndex:
    """The package index: project pages, files and uploads, for every front end."""

    def __init__(self, settings: Settings, stores: Stores, storage: Storage,
                 upstream: UpstreamClient, jobs: JobQueue | None = None) -> None:
        self.settings = settings
        self._close_stores = stores.close
        self.projects = stores.projects
        self.files = stores.files
        self.leases = Leases(stores.leases)
        self.audit = stores.audit
        self.tokens = stores.tokens
        self.policies = stores.policies
        self._file_rules: tuple[Rule, ...] = tuple(
            read_policy_file(settings.policy_file) if settings.policy_file else ())
        self._policy: tuple[float, Policy] | None = None
        self._policy_guard = threading.Lock()
        #: Download counters, written in batches by a thread of this process.
        self.stats = StatsRecorder(stores.stats)
        #: What the web UI lists.
        self.catalog = Catalog(stores.projects, self.stats)
        self.storage = storage
        self.upstream = upstream
        cache_bytes = settings.page_cache_mb * 2**20
        # The budget split: rendered pages are served most; states hold parsed files.
        self.mirror = Mirror(stores.pages, upstream, settings.index_ttl,
                             settings.revalidate_wait, settings.not_found_ttl, cache_bytes // 2)
        self.fetcher = Fetcher(self.files, self.leases, storage, upstream,
                               Path(settings.package_cache) / "spool", settings.max_file_size,
                               on_fetched=lambda project, size: self.stats.record(
                                   project, FETCHED, size))
        self.jobs = jobs
        #: Keyed by what the page is made of: the private files' serial, the upstream digest.
        self._pages: BoundedCache[tuple, RenderedPage] = BoundedCache(
            cache_bytes // 2, lambda r: len(r.html) + len(r.json))
        #: Uploaded files' core metadata by sha256 (an sdist's PKG-INFO is read from inside it).
        self._core_metadata: BoundedCache[str, bytes] = BoundedCache(4 * 2**20, len, 1024)

    # Pages

    def project_page(self, name: str) -> RenderedPage:
        """The project's page: private files, upstream files (unless shadowed), or both.

        Raises NotFound, or UpstreamError when upstream fails and nothing is stored.
        """
        canonical = normalized(name)
        project = self.projects.page_row(canonical)
        private = project is not None and project.private
        policy = self.policy()
        visibility = self.visibility(canonical, private,
                                     project.upstream_mode if project else None, policy)
        visibility.check_project()
        upstream: UpstreamState | None = None
        stale_reason: str | None = None
        if visibility.upstream:
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
                                    upstream, visibility)
            rendered = self._pages.put(key, RenderedPage.of(page))
        return replace(rendered, stale_reason=stale_reason) if stale_reason else rendered

    def _cooldown_epoch(self) -> int | None:
        # A cooldown makes the page depend on the clock: rebuild at most once a minute.
        return int(time.time() // 60) if self.settings.cooldown else None

    def _build_page(self, name: str, private_project_id: int | None,
                    upstream: UpstreamState | None, visibility: Visibility) -> ProjectPage:
        parts: list[PagePart] = []
        private_names: set[str] = set()
        if private_project_id is not None:
            private = self.files.private_page_files(private_project_id)
            private_names = {f.filename for f in private}
            parts.append(render_part(name, private))
        if upstream is not None:
            if private_names or not visibility.upstream_as_listed:
                parts.append(render_part(name, visibility.upstream_files(upstream.files,
                                                                         private_names)))
            else:
                # Every upstream file, rendered when the mirror stored the page.
                parts.append(upstream.part)
        return ProjectPage(name=name, parts=tuple(p for p in parts if p.count))

    def visibility(self, name: str, private: bool, mode: str | None = None,
                   policy: Policy | None = None) -> Visibility:
        """The visibility rules of project ``name`` (canonical) now; ``mode`` is a private
        project's own merge/shadow choice (None: UPSTREAM_MERGE decides)."""
        settings = self.settings
        return Visibility.of(name, private, settings.upstream_merge, settings.cooldown,
                             settings.cooldown_exempt, mode=mode, policy=policy or self.policy())

    # Access: reserved names and policies

    def policy(self, fresh: bool = False) -> Policy:
        """The rules and reservations in force: POLICY_FILE, RESERVED_NAMES and the stored ones.

        Read from the database at most every POLICY_REFRESH seconds (``fresh``: now),
        so the page path queries no rules per request.
        """
        found = self._policy
        if not fresh and found is not None and time.monotonic() - found[0] < POLICY_REFRESH:
            return found[1]
        with self._policy_guard:
            found = self._policy
            if fresh or found is None or time.monotonic() - found[0] >= POLICY_REFRESH:
                found = (time.monotonic(), policies.snapshot(
                    self.policies, self._file_rules, self.settings.reserved_names))
                self._policy = found
            return found[1]

    def policy_changed(self) -> None:
        """After a change of rules or reservations: this process applies it at its next request."""
        self._policy = None

    def add_rule(self, rule: Rule, remote_addr: str | None = None) -> Rule:
        """Store a policy rule, audited; this process applies it at once."""
        stored = policies.add_rule(self.policies, rule, remote_addr)
        self.policy_changed()
        return stored

    def remove_rule(self, rule_id: int, remote_addr: str | None = None) -> Rule:
        """Remove a stored policy rule, audited."""
        removed = policies.remove_rule(self.policies, rule_id, remote_addr)
        self.policy_changed()
        return removed

    def reserve(self, pattern: str, note: str = "", remote_addr: str | None = None) -> Reservation:
        """Reserve a name or prefix, audited."""
        found = policies.reserve(self.policies, pattern, note, remote_addr)
        self.policy_changed()
        return found

    def unreserve(self, reservation_id: int, remote_addr: str | None = None) -> Reservation:
        """Release a reservation, audited."""
        found = self.policies.unreserve(reservation_id, remote_addr)
        self.policy_changed()
        return found

    def issue_token(self, new: access.NewToken,
                    remote_addr: str | None = None) -> tuple[str, TokenRecord]:
        """A new token: its secret (shown once) and its record."""
        return access.issue(self.tokens, new, remote_addr)

    def token(self, secret: str) -> TokenRecord | None:
        """The stored token of ``secret`` (revoked and expired ones too), or None."""
        return access.lookup(self.tokens, secret)

    def reserved_names(self) -> tuple[NamePattern, ...]:
        """The names and prefixes that come only from private uploads (read fresh: for uploads)."""
        return self.policy(fresh=True).reserved

    def _refuse(self, visibility: Visibility, origin: str, version: str | None,
                filename: str) -> None:
        """NotFound / Forbidden when a reservation or a policy refuses this non-private file."""
        if origin == PRIVATE:
            return
        visibility.check_project()
        if visibility.upstream:
            refusal = visibility.refusal(origin, version, filename)
            if refusal is not None:
                raise Forbidden(refusal)

    def root_page(self) -> tuple[bytes, bytes]:
        """The /simple/ page: every project Havarti can serve without upstream (HTML, JSON)."""
        # Pages this process answered are listed, though their writes follow the answers.
        self.mirror.flush(30)
        names = self.projects.served_names()
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
        _, chunks = self.fetcher.open(canonical, upstream_file)
        self._bound_cache()
        return StreamingFile(filename, upstream_file.size, upstream_file.sha256, chunks)

    def count_download(self, project: str, hit: bool, size: int) -> None:
        """Count a file request for the stats page: from storage (hit) or not (a miss:
        streamed along its download, or redirected upstream)."""
        self.stats.record(normalized(project), CACHE_HIT if hit else UPSTREAM, size)

    def read(self, file: StoredFile, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes of a stored file from ``start`` to ``end`` (inclusive; None: to its end)."""
        return self.storage.open(file.key, start, end)

    def _stored(self, canonical: str, filename: str, body: bool = True) -> StoredFile | None:
        now = datetime.now(UTC)
        row = self.files.held(canonical, filename)
        if row is None or not row.stored:
            return None
        if body and (row.last_served is None or now - row.last_served > LAST_SERVED_RESOLUTION):
            # For eviction's sake only: a full disk must not keep the file from being served.
            self.files.served(row.id, now)
        visibility = self.visibility(canonical, row.private_project, row.upstream_mode)
        # A cached file answers to the policy in force, not the one it was cached under.
        self._refuse(visibility, row.origin, row.version, filename)
        if not visibility.shows(row.origin):
            return None
        if not body:
            return StoredFile(filename, row.storage_key, row.size, row.sha256, None, None)
        try:
            local = self.storage.local_path(row.storage_key)
            redirect = None if local else self.storage.url(row.storage_key, filename)
        except StorageError as exc:
            raise StorageUnavailable(f"storage unavailable: {exc}") from None
        return StoredFile(filename, row.storage_key, row.size, row.sha256, local, redirect)

    def _upstream_file(self, canonical: str, filename: str) -> PageFile:
        project = self.projects.page_row(canonical)
        visibility = self.visibility(canonical, project is not None and project.private,
                                     project.upstream_mode if project else None)
        visibility.check_project()
        if not visibility.upstream:
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
        self._refuse(visibility, found.origin, found.version, filename)
        if not visibility.shows(found.origin, found.upload_datetime):
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
        row = self.files.held(canonical, filename)
        if row is not None:
            self._refuse(self.visibility(canonical, row.private_project, row.upstream_mode),
                         row.origin, row.version, filename)
        held = row if row is not None and (
            self.visibility(canonical, row.private_project, row.upstream_mode).shows(row.origin)
        ) else None
        expected: str | None = None
        upstream_file: PageFile | None = None
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
        """The PyPI JSON API document (see havarti.domain.json_api), visible as the pages are.

        A shadowing private project: built from its rows and core metadata. Otherwise
        upstream's, or, when upstream has no JSON API, built from its simple page; a
        merged project adds its private files. Raises NotFound with a one-line reason.
        """
        canonical = normalized(project)
        row = self.projects.page_row(canonical)
        private = row is not None and row.private
        visibility = self.visibility(canonical, private, row.upstream_mode if row else None)
        if not visibility.upstream:
            # Shadowed, reserved or denied: private files only (refused without any).
            visibility.check_project()
            return self._private_json(canonical, version, base_url)
        try:
            document = self._upstream_json(canonical, version, base_url, visibility)
        except NotFound:
            if not private:
                raise
            # Merged, and upstream lacks the project or the version: the private files alone.
            return self._private_json(canonical, version, base_url)
        if private:
            document = json_api.add_private_files(
                document, json_api.private_releases(self.projects, canonical, base_url)[2],
                version)
        return document

    def _private_json(self, name: str, version: str | None, base_url: str) -> dict:
        document = json_api.private_project_json(self.projects, name, version, base_url,
                                                 self._uploaded_metadata)
        if document is None:
            raise NotFound(f"no project named {name!r}")
        return document

    def _upstream_json(self, name: str, version: str | None, base_url: str,
                       visibility: Visibility) -> dict:
        try:
            return json_api.upstream_project_json(
                self.upstream, name, version, base_url, visibility.cooldown_cutoff,
                offered=lambda filename, v: visibility.refusal(UPSTREAM_FILE, v, filename) is None)
        except (UpstreamNotFound, UpstreamError) as exc:
            # An upstream without a JSON API (a plain simple index), or one failing now:
            # the document is built from the simple page (stored, in an outage).
            log.info("json-api-from-simple-page project=%s reason=%s", name, exc)
        try:
            state = self.mirror.state(name)
        except UpstreamNotFound:
            raise NotFound(f"no project named {name!r}") from None
        return json_api.simple_project_json(
            name, visibility.upstream_files(state.files), version, base_url,
            lambda f: self._upstream_metadata(name, f.filename))

    def _upstream_metadata(self, name: str, filename: str) -> bytes | None:
        """An upstream file's core metadata (PEP 658), verified and kept; None on failure."""
        try:
            return self.metadata(name, filename).data
        except (HavartiError, StorageError) as exc:
            log.warning("json-api-metadata-failed project=%s file=%s reason=%s", name, filename,
                        exc)
            return None

    def _uploaded_metadata(self, file: FileDetails) -> bytes | None:
        """An uploaded file's core metadata: its stored METADATA, else read from inside it."""
        cached = self._core_metadata.get(file.sha256)
        if cached is not None:
            return cached
        try:
            key = metadata_key(file.metadata_sha256, file.filename) if file.metadata_sha256 else None
            if key is not None and self.storage.exists(key):
                data: bytes | None = self.storage.read_bytes(key)
            else:
                data = self._metadata_inside(file.storage_key, file.filename)
        except (StorageError, OSError) as exc:
            log.warning("json-api-metadata-failed file=%s reason=%s", file.filename, exc)
            return None
        return self._core_metadata.put(file.sha256, data) if data is not None else None

    # Uploads

    def upload(self, upload: Upload) -> Uploaded:
        """Validate and store an upload (see uploads.accept_upload); warn when it starts
        shadowing upstream."""
        canonical = normalized(upload.name)
        # Only a name a database can hold is looked up; accept_upload refuses any other.
        before = self.projects.page_row(canonical) if is_project_name(upload.name) else None
        stored = accept_upload(self.files, self.storage, upload, self.settings.max_upload_size)
        warning = None
        if before is None or not before.private:
            warning = self._shadowing_warning(canonical)
        return Uploaded(stored, warning)

    def _shadowing_warning(self, name: str) -> str | None:
        """What a project's first upload tells the uploader when it hides upstream's files."""
        row = self.projects.page_row(name)
        if row is None or not self.visibility(name, row.private, row.upstream_mode).shadows:
            return None
        hidden = self.upstream_files(name)
        if hidden is None:
            return None
        log.warning("upload-shadows-upstream project=%s upstream_files=%d", name, hidden)
        files = "1 upstream file is" if hidden == 1 else f"{hidden} upstream files are"
        return (f"warning: upstream also has a project named {name!r}; this private project "
                f"now shadows it, so its {files} no longer offered here. To offer both: "
                f"havarti project {name} --merge (or POST /api/projects/{name}/merge with the "
                "passcode)")

    # Private projects and upstream

    def upstream_files(self, name: str) -> int | None:
        """How many files upstream offers for ``name`` (what shadowing hides), or None when
        upstream has no such project or cannot be asked. A stored page is taken as it is."""
        canonical = normalized(name)
        visibility = self.visibility(canonical, False)
        if not visibility.upstream:
            return None  # a reserved or denied name: upstream is never asked
        try:
            state = self.mirror.state(canonical, revalidate=False)
        except (UpstreamNotFound, UpstreamError):
            return None
        return len(visibility.upstream_files(state.files))

    def upstream_page_url(self, name: str) -> str:
        """The upstream's own page of ``name``: where the files a private project hides are."""
        return f"{self.upstream.index_url.rstrip('/')}/{normalized(name)}/"

    def project_mode(self, name: str) -> ProjectMode:
        """The project's standing towards upstream; NotFound for an unknown project."""
        return self._with_shadowing(self.projects.mode(normalized(name)))

    def set_upstream_mode(self, name: str, mode: str,
                          remote_addr: str | None = None) -> ProjectMode:
        """Merge the private project ``name`` with upstream, or shadow it (audit-logged)."""
        return self._with_shadowing(manage.set_upstream_mode(self.projects, name, mode,
                                                             remote_addr))

    def release(self, name: str, remote_addr: str | None = None) -> ProjectMode:
        """Hand an empty private project back to upstream (audit-logged)."""
        return self._with_shadowing(manage.release(self.projects, name, remote_addr))

    def _with_shadowing(self, state: ProjectMode) -> ProjectMode:
        shadows = self.visibility(state.project, state.private, state.upstream_mode).shadows
        return msgspec.structs.replace(state, shadows_upstream=shadows)

    # Managing private files

    def yank(self, project: str, filename: str, reason: str = "",
             remote_addr: str | None = None) -> manage.FileState:
        """Yank a private file (PEP 592), audited."""
        return manage.yank(self.files, project, filename, reason, remote_addr)

    def unyank(self, project: str, filename: str,
               remote_addr: str | None = None) -> manage.FileState:
        """Make a yanked private file installable again, audited."""
        return manage.unyank(self.files, project, filename, remote_addr)

    def delete(self, project: str, filename: str,
               remote_addr: str | None = None) -> manage.FileState:
        """Delete a private file, audited; the project stays private."""
        return manage.delete(self.files, self.storage, project, filename, remote_addr)

    def audit_log(self, project: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """The newest changes to private files first, for one project or all."""
        return self.audit.entries(normalized(project) if project is not None else None, limit)

    def close(self) -> None:
        """Let go of connections (upstream pool, database engine)."""
        self.upstream.close()
        self._close_stores()

