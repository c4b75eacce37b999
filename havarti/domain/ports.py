"""The small interfaces the domain needs of persistence (implemented in havarti.db).

The domain holds no SQL: it asks these. havarti.db implements each over the
database; unit tests pass in-memory fakes (tests/unit/fakes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, Protocol

from havarti.records import (
    AuditEntry,
    DeletedFile,
    FileDetails,
    FileDigests,
    HeldFile,
    PageFile,
    ProjectListing,
    ProjectMode,
    ProjectRow,
    Reservation,
    StoredPageRow,
    StoredRule,
    TokenRecord,
    UploadedFile,
)


class BrowseStore(Protocol):
    """What the web UI lists of projects (havarti.db.projects.Projects)."""

    def search(self, needle: str, kind: str, page: int,
               per_page: int) -> tuple[int, list[ProjectListing]]:
        """How many projects match, and page ``page`` of them."""
        ...

    def counts(self) -> dict[bool, int]:
        """How many projects are private (True) and cached-only (False)."""
        ...

    def listing(self, name: str) -> ProjectListing | None:
        """Project ``name`` as the UI names it, or None."""
        ...

    def newest_description(self, name: str) -> tuple[str | None, str | None, str | None] | None:
        """Summary, description and content type of the newest upload of ``name``."""
        ...

    def cached_filenames(self, name: str) -> frozenset[str]:
        """Upstream files of ``name`` that Havarti holds in its storage."""
        ...


class PrivateProjects(Protocol):
    """Private projects with every detail of their files (havarti.db.projects.Projects)."""

    def private_files(self, name: str) -> tuple[ProjectListing, list[FileDetails]] | None:
        """A private project and its uploaded files; None when it is not private."""
        ...


class ProjectModes(Protocol):
    """A private project's standing towards upstream (havarti.db.projects.Projects)."""

    def mode(self, name: str) -> ProjectMode:
        """Project ``name`` (canonical) towards upstream; NotFound without such a project."""
        ...

    def set_mode(self, name: str, mode: str, remote_addr: str | None) -> ProjectMode:
        """Record a private project's merge/shadow choice, audited (Conflict: not private)."""
        ...

    def release(self, name: str, remote_addr: str | None) -> ProjectMode:
        """Make an empty private project an upstream one again, audited (Conflict: files
        left, or not private)."""
        ...


class ProjectStore(BrowseStore, PrivateProjects, ProjectModes, Protocol):
    """Projects Havarti has a row of (havarti.db.projects.Projects)."""

    def page_row(self, name: str) -> ProjectRow | None:
        """What a page needs of project ``name`` (canonical), or None."""
        ...

    def is_private(self, name: str) -> bool:
        """Whether project ``name`` (canonical) has private uploads."""
        ...

    def served_names(self) -> list[str]:
        """Every project Havarti can serve without upstream, sorted."""
        ...


class UploadStore(Protocol):
    """What an upload needs of the files table (havarti.db.files.Files)."""

    def taken(self, filename: str) -> bool:
        """Whether a row of ``filename`` exists."""
        ...

    def filenames_of(self, project: str) -> list[str]:
        """The filenames of project ``project`` (canonical)."""
        ...

    def add_upload(self, project_name: str, file: UploadedFile,
                   check: Callable[[bool, list[str]], None]) -> None:
        """Add an uploaded file's row; ``check(taken, filenames)`` runs in the transaction."""
        ...

    def keys_of(self, filename: str) -> tuple[str, str | None] | None:
        """The storage key and metadata sha256 of ``filename``'s row, or None."""
        ...

    def deleted(self, filename: str) -> DeletedFile | None:
        """The tombstone of ``filename`` (or a variant of it) when it was deleted, or None."""
        ...


class ManagedFiles(Protocol):
    """What managing private files needs of the files table (havarti.db.files.Files)."""

    def set_yanked(self, project: str, filename: str, reason: str | None,
                   remote_addr: str | None) -> str:
        """Yank (unyank when ``reason`` is None) a private file, audited; its project's name."""
        ...

    def delete_private(self, project: str, filename: str,
                       remote_addr: str | None) -> tuple[str, str, str | None]:
        """Delete a private file's row, audited: project name, storage key, metadata sha256."""
        ...

    def key_in_use(self, key: str) -> bool:
        """Whether any row points at ``key``."""
        ...


class AuditStore(Protocol):
    """The audit log (havarti.db.audit.AuditTrail)."""

    def entries(self, project: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """The newest changes first, for one project (canonical) or all."""
        ...


class EvictableFiles(Protocol):
    """What eviction needs of the files table (havarti.db.files.Files)."""

    def cached_usage(self) -> tuple[int, int]:
        """How many cached upstream files are stored, and their bytes."""
        ...

    def eviction_order(self) -> list[Any]:
        """Stored cached files (id, filename, size, storage_key, last_served), least
        recently served first."""
        ...

    def mark_evicted(self, file_id: int, last_served: datetime | None) -> bool:
        """Mark a file not stored, only if nobody served it since ``last_served``."""
        ...


class FileStore(UploadStore, ManagedFiles, EvictableFiles, Protocol):
    """Distribution files Havarti has a row of (havarti.db.files.Files)."""

    def private_page_files(self, project_id: int) -> list[PageFile]:
        """The uploaded files of a project, as its page lists them."""
        ...

    def held(self, project: str, filename: str) -> HeldFile | None:
        """The row of ``filename`` when it is a file of ``project``, else None."""
        ...

    def served(self, file_id: int, when: datetime) -> None:
        """Note that a file was served (for eviction)."""
        ...

    def stored_copy(self, project: str, file: PageFile) -> HeldFile | None:
        """The stored row of upstream ``file`` with the sha256 its page promises, or None."""
        ...

    def record_cached(self, project: str, file: PageFile, key: str,
                      digests: FileDigests) -> HeldFile:
        """Record upstream ``file`` as stored at ``key``."""
        ...

    def stored_keys(self) -> set[str]:
        """The storage keys stored rows point at."""
        ...

    def key_stored(self, key: str) -> bool:
        """Whether a stored row points at ``key``."""
        ...

    def stored_sizes(self, filenames: Iterable[str]) -> dict[str, int]:
        """The size of each of ``filenames`` that is stored."""
        ...


class UpstreamPageStore(Protocol):
    """Upstream pages as stored between requests (havarti.db.pages.UpstreamPages)."""

    def load(self, name: str) -> StoredPageRow | None:
        """The stored page's validators and digest, or None."""
        ...

    def data(self, row_id: int) -> str:
        """The stored files (records.dump_files)."""
        ...

    def rendered(self, row_id: int) -> str | None:
        """The stored rendering, prefixed by its page's digest and a newline."""
        ...

    def touch(self, name: str, etag: str | None, last_modified: str | None) -> None:
        """Upstream confirmed the stored page now."""
        ...

    def store(self, name: str, values: Mapping[str, object]) -> int:
        """Write the page's row; its id."""
        ...

    def forget(self, name: str) -> None:
        """Delete the stored page."""
        ...


class StatsStore(Protocol):
    """Download counters per day (havarti.db.stats.DailyCounts)."""

    def add(self, batch: Mapping[tuple[str, str, str], tuple[int, int] | list[int]]) -> None:
        """Add ``(day, project, kind) -> (count, bytes)`` to the stored totals."""
        ...

    def per_day(self, first: date) -> list[tuple[str, str, int, int]]:
        """(day, kind, count, bytes) totals from ``first`` on."""
        ...

    def top_projects(self, first: date, kind: str, limit: int,
                     kinds: tuple[str, ...] | None = None) -> list[tuple[str, int, int, int]]:
        """(project, counts, counts of ``kind``, bytes) of the ``kinds`` given (default:
        all), highest count first."""
        ...

    def stored_by_origin(self) -> dict[bool, tuple[int, int]]:
        """Stored files and bytes: private (True) and cached (False)."""
        ...


class LeaseStore(Protocol):
    """Where lease rows live (havarti.db.leases.LeaseTable)."""

    def drop_expired(self, key: str, now: datetime) -> None:
        """Delete ``key``'s lease if it expired before ``now``."""
        ...

    def insert(self, key: str, holder: str, expires: datetime) -> bool:
        """Add the lease; False when ``key`` is held already."""
        ...

    def holder(self, key: str) -> str | None:
        """Who holds ``key``, or None."""
        ...

    def delete(self, key: str, holder: str) -> None:
        """Delete ``key``'s lease if ``holder`` holds it."""
        ...

    def extend(self, key: str, holder: str, expires: datetime) -> None:
        """Move the expiry of ``holder``'s lease ``key``."""
        ...


class TokenStore(Protocol):
    """API tokens, by the hash of their secret (havarti.db.tokens.TokenRepository)."""

    def create(self, token_hash: str, scope: str, projects: tuple[str, ...],
               expires: datetime | None, note: str, remote_addr: str | None = None) -> TokenRecord:
        """Store a token by its hash, audited."""
        ...

    def find(self, token_hash: str) -> TokenRecord | None:
        """The token of this hash (revoked and expired ones too), or None."""
        ...

    def touch(self, record: TokenRecord, now: datetime) -> None:
        """Note a use (at most once a minute per token)."""
        ...

    def list(self) -> list[TokenRecord]:
        """Every token, oldest first."""
        ...

    def revoke(self, token_id: int, remote_addr: str | None = None) -> TokenRecord:
        """Revoke a token, audited; NotFound if there is none."""
        ...


class PolicyStore(Protocol):
    """Policy rules and reserved names (havarti.db.policies.PolicyRepository)."""

    def load(self) -> tuple[list[StoredRule], list[str]]:
        """Every stored rule and reserved pattern."""
        ...

    def add_rule(self, action: str, match: str, filename: str, reason: str, project: str,
                 described: str, remote_addr: str | None = None) -> StoredRule:
        """Store a checked rule, audited."""
        ...

    def remove_rule(self, rule_id: int, project: str, described: str,
                    remote_addr: str | None = None) -> StoredRule:
        """Remove a rule, audited; NotFound if there is none."""
        ...

    def reservations(self) -> list[Reservation]:
        """The stored reservations, oldest first."""
        ...

    def reserve(self, pattern: str, note: str = "", remote_addr: str | None = None) -> Reservation:
        """Reserve a normalised name or prefix, audited; Conflict if it is already."""
        ...

    def unreserve(self, reservation_id: int, remote_addr: str | None = None) -> Reservation:
        """Release a reservation, audited; NotFound if there is none."""
        ...


class JobQueue(Protocol):
    """Background jobs (havarti.jobs: Celery through Redis, or threads in this process)."""

    def enqueue(self, name: str, **kwargs: Any) -> bool:
        """Queue job ``name``; False when it could not be queued (the broker is down)."""
        ...

    def failure(self, name: str, **kwargs: Any) -> str | None:
        """Why the last run of this job failed for good, or None."""
        ...

    def pending(self) -> int:
        """Jobs queued or running; -1 when unknown."""
        ...

    def workers(self, timeout: float) -> int | None:
        """Worker processes taking jobs, asked within ``timeout`` seconds; None when jobs
        run in this process. Raises when that cannot be known (the broker is down)."""
        ...
