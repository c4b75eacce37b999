"""Database tables, as SQLAlchemy 2 typed models. Alembic migrations mirror them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


ORIGIN_UPLOADED = "uploaded"
ORIGIN_CACHED = "cached"


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: PEP 503 normalised name: the identity of the project.
    name: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    #: True once anything was uploaded: the project then shadows upstream (unless merged),
    #: until it is released back to upstream (havarti.domain.manage.release).
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A private project's own choice, "merge" or "shadow" (havarti.domain.visibility);
    #: None follows UPSTREAM_MERGE.
    upstream_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    #: Bumped on every change of the project's files; rendered pages are keyed by it.
    serial: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    files: Mapped[list[File]] = relationship(back_populates="project")


class File(Base):
    """A distribution file Havarti stores: uploaded, or cached from upstream."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_project_id", "project_id"),
                      Index("ix_files_origin_last_served", "origin", "last_served"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255), unique=True)
    version: Mapped[str] = mapped_column(String(255))
    packagetype: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str | None] = mapped_column(String(32))
    blake2_256: Mapped[str | None] = mapped_column(String(64))
    requires_python: Mapped[str | None] = mapped_column(String(255))
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_reason: Mapped[str | None] = mapped_column(Text)
    upload_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    origin: Mapped[str] = mapped_column(String(16))
    #: sha256 of the core metadata file (PEP 658), when Havarti holds it.
    metadata_sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    #: Where a cached file came from; kept so an evicted file can be fetched again.
    upstream_url: Mapped[str | None] = mapped_column(Text)
    #: False once eviction removed the stored object (cached files only).
    stored: Mapped[bool] = mapped_column(Boolean, default=True)
    last_served: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Description from the core metadata (private uploads), for the web UI.
    summary: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    description_content_type: Mapped[str | None] = mapped_column(String(255))

    project: Mapped[Project] = relationship(back_populates="files")


class UpstreamPage(Base):
    """The last good upstream page of a project, parsed, with its validators."""

    __tablename__ = "upstream_pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    etag: Mapped[str | None] = mapped_column(String(512))
    last_modified: Mapped[str | None] = mapped_column(String(128))
    #: sha256 of upstream's bytes (content type and body): the page's identity.
    digest: Mapped[str | None] = mapped_column(String(64))
    #: Upstream's body size in bytes.
    size: Mapped[int | None] = mapped_column(BigInteger)
    #: JSON list of upstream files (see havarti.records.dump_files).
    data: Mapped[str] = mapped_column(Text)
    fetched: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When upstream last confirmed the page (200 or 304).
    checked: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The files pre-rendered for Havarti's own page ("<digest>\n" and a PagePart as JSON),
    #: so a fresh process serves a large page without parsing or rendering it.
    rendered: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """A short-lived claim on work (an upstream download), shared by all processes."""

    __tablename__ = "leases"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires: Mapped[datetime] = mapped_column(UTCDateTime)


class DailyCount(Base):
    """Download counters per day and project, for the stats page: from cache or upstream."""

    __tablename__ = "daily_stats"
    __table_args__ = (UniqueConstraint("day", "project", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))
    project: Mapped[str] = mapped_column(String(255))
    #: "cache_hit" or "upstream".
    kind: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditLog(Base):
    """Changes to private packages: who (address) did what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    project: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)


class Token(Base):
    """An API token: only its sha256 is kept (see havarti.domain.access.token_hash)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: read, upload or admin.
    scope: Mapped[str] = mapped_column(String(16))
    #: Name patterns an upload token is limited to, space-separated; empty: any.
    projects: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Written at most once a minute per token (havarti.db.tokens.TOUCH_EVERY).
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Tombstone(Base):
    """A deleted private file: its filename may come back only with the same bytes."""

    __tablename__ = "tombstones"

    #: normalized_filename(filename): variants of a name are one file to installers.
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    deleted: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReservedName(Base):
    """A name or prefix (``acme-*``) that comes only from private uploads, never upstream."""

    __tablename__ = "reserved_names"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(255), unique=True)
    note: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PolicyRule(Base):
    """A deny or allow rule for upstream files (havarti.domain.policy.Rule)."""

    __tablename__ = "policy_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: deny or allow.
    action: Mapped[str] = mapped_column(String(8))
    #: A requirement (``urllib3<1.26.5``, ``evil-pkg``, ``acme-*``), or empty.
    match: Mapped[str] = mapped_column(String(255), default="")
    #: A filename glob (``*-win32.whl``), or empty.
    filename: Mapped[str] = mapped_column(String(255), default="")
    reason: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
