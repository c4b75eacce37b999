"""The records every layer shares: one distribution file as a project page lists it.

A file has one record, whoever lists it: upstream's page (parsed by
havarti.upstream.client straight into it with msgspec, for speed on big pages),
a row of Havarti's own (converted in havarti.db.files), a rendered page, the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

#: The simple API's media types (PEP 691).
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"

#: Where a listed file comes from.
PRIVATE = "private"  # uploaded to Havarti
CACHED = "cached"  # an upstream file Havarti holds a row of
UPSTREAM = "upstream"  # listed by upstream's page


class PageFile(msgspec.Struct, frozen=True, omit_defaults=True):
    """One distribution file of a project page: upstream's or Havarti's own."""

    filename: str
    #: Where the bytes come from: upstream's URL for an upstream file; "" for one Havarti holds.
    url: str
    hashes: dict[str, str]
    version: str | None = None
    requires_python: str | None = None
    #: False, or the reason (may be empty) when yanked (PEP 592).
    yanked: bool | str = False
    #: False, or the hashes of the core metadata file (PEP 658/714).
    core_metadata: bool | dict[str, str] = False
    size: int | None = None
    #: ISO 8601, as upstream sent it (PEP 700).
    upload_time: str | None = None
    #: PRIVATE, CACHED or UPSTREAM: for visibility and the UI, not rendered in the simple API.
    origin: str = UPSTREAM

    @property
    def sha256(self) -> str | None:
        """The sha256 the listing promises, if any."""
        return self.hashes.get("sha256")

    @property
    def upload_datetime(self) -> datetime | None:
        """``upload_time`` as a datetime (None when not listed)."""
        if not self.upload_time:
            return None
        return datetime.fromisoformat(self.upload_time.replace("Z", "+00:00"))


_files_encoder = msgspec.json.Encoder()
_files_decoder = msgspec.json.Decoder(list[PageFile])


def dump_files(files: list[PageFile] | tuple[PageFile, ...]) -> str:
    """The files as stored between requests (JSON); ``load_files`` reads them back."""
    return _files_encoder.encode(files).decode()


def load_files(data: str | bytes) -> list[PageFile]:
    """Files stored by ``dump_files``."""
    return _files_decoder.decode(data)


class ProjectRow(msgspec.Struct, frozen=True):
    """What a project page needs of a project Havarti has a row of."""

    id: int
    #: Bumped on every change to the project's own files: part of its page's identity.
    serial: int
    private: bool
    #: A private project's own choice, "merge" or "shadow"; None: UPSTREAM_MERGE decides.
    upstream_mode: str | None = None


class HeldFile(msgspec.Struct, frozen=True):
    """A file Havarti has a row of: where its bytes are and whose it is."""

    id: int
    filename: str
    project: str
    #: records.PRIVATE (uploaded) or CACHED (fetched from upstream).
    origin: str
    #: Whether the project has private uploads (shadowing hides its cached files).
    private_project: bool
    storage_key: str
    size: int
    sha256: str
    #: False once evicted: the row stays, the bytes are gone.
    stored: bool
    last_served: datetime | None
    metadata_sha256: str | None
    #: The project's own merge/shadow choice (see ProjectRow.upstream_mode).
    upstream_mode: str | None = None
    #: The version the filename names (a policy judges a cached file by it).
    version: str | None = None


class DeletedFile(msgspec.Struct, frozen=True):
    """The tombstone of a deleted private file: its name comes back only with these bytes."""

    filename: str
    sha256: str
    deleted: datetime


class FileDigests(msgspec.Struct, frozen=True):
    """What was verified of a file's bytes as they were stored."""

    size: int
    sha256: str
    md5: str
    blake2_256: str


class StoredPageRow(msgspec.Struct, frozen=True):
    """A stored upstream page's validators and identity (its files are read separately)."""

    id: int
    etag: str | None
    last_modified: str | None
    #: sha256 of upstream's bytes; None on rows stored before pages had digests.
    digest: str | None
    fetched: datetime
    checked: datetime
    size: int | None


class UploadedFile(msgspec.Struct, frozen=True):
    """A private file as an upload stores it: validated, digested, its metadata read."""

    filename: str
    version: str
    packagetype: str
    size: int
    sha256: str
    md5: str
    blake2_256: str
    requires_python: str | None
    metadata_sha256: str | None
    storage_key: str
    summary: str | None
    description: str | None
    description_content_type: str | None


class AuditEntry(msgspec.Struct, frozen=True):
    """One change to a private file, as the audit log keeps it."""

    time: datetime
    remote_addr: str | None
    action: str
    project: str
    filename: str | None
    detail: str | None


class ProjectMode(msgspec.Struct, frozen=True):
    """A project's standing towards the public project of its name."""

    project: str
    private: bool
    #: Its own choice ("merge", "shadow"), or None: UPSTREAM_MERGE decides.
    upstream_mode: str | None
    #: Private files left.
    files: int
    #: Whether upstream's files of the name are hidden now (filled in by the index).
    shadows_upstream: bool = False

    def as_json(self) -> dict:
        """The JSON API's document."""
        return {"project": self.project, "private": self.private,
                "upstream_mode": self.upstream_mode, "shadows_upstream": self.shadows_upstream,
                "files": self.files}


class ProjectListing(msgspec.Struct, frozen=True):
    """A project as the web UI lists it."""

    name: str
    display_name: str
    private: bool
    files: int = 0
    latest: str | None = None
    last_upload: datetime | None = None
    serial: int = 0


class FileDetails(msgspec.Struct, frozen=True):
    """A private file with everything the PyPI JSON API tells of it."""

    filename: str
    version: str
    packagetype: str
    size: int
    sha256: str
    md5: str | None
    blake2_256: str | None
    requires_python: str | None
    upload_time: datetime
    yanked: bool
    yanked_reason: str | None
    summary: str | None
    description: str | None
    description_content_type: str | None
    #: Where its bytes are, and its core metadata's sha256 (wheels): ``info`` is read from them.
    storage_key: str = ""
    metadata_sha256: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, without its secret."""

    id: int
    scope: str
    #: Name patterns (``acme-*``, normalised) an upload token is limited to; empty: any.
    projects: tuple[str, ...]
    note: str
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    revoked: datetime | None = None

    def refusal(self, now: datetime) -> str | None:
        """Why this token is not accepted at ``now``, or None."""
        if self.revoked is not None:
            return f"token {self.id} was revoked"
        if self.expires is not None and now >= self.expires:
            return f"token {self.id} expired at {self.expires.strftime('%Y-%m-%d %H:%M UTC')}"
        return None

    def as_json(self) -> dict:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        return {"id": self.id, "scope": self.scope, "projects": list(self.projects),
                "note": self.note, "created": iso(self.created), "expires": iso(self.expires),
                "last_used": iso(self.last_used), "revoked": iso(self.revoked)}


@dataclass(frozen=True)
class Reservation:
    """A reserved name or prefix stored by ``havarti reserved add`` or the API."""

    id: int
    pattern: str
    note: str
    created: datetime

    def as_json(self) -> dict:
        return {"id": self.id, "pattern": self.pattern, "note": self.note,
                "created": self.created.isoformat(timespec="seconds")}


@dataclass(frozen=True)
class StoredRule:
    """A policy rule as stored (havarti.domain.policy.Rule checks and applies it)."""

    id: int
    action: str
    match: str
    filename: str
    reason: str
