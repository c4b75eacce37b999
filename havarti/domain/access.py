"""Who may do what: token secrets, scopes, and name patterns (``acme-*``).

Plain logic, no database or web: :mod:`havarti.db.tokens` stores tokens,
:mod:`havarti.web.auth` reads credentials off a request and asks the
functions here.

Scopes are ranked: ``admin`` may do all an ``upload`` token may, which may
read. ``PASSCODE`` counts as admin.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.utils import canonicalize_name

from havarti.domain.text import is_project_name, problem
from havarti.errors import Forbidden, InvalidRequest

SCOPES = ("read", "upload", "admin")
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}
#: Every token starts with this: a log scanner (or a person) can tell one from a password.
TOKEN_PREFIX = "hvt_"
_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*\*?$", re.I)


def new_secret() -> str:
    """A fresh token: 256 random bits, URL- and header-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """What is stored of a token: its sha256.

    A slow password hash (bcrypt, scrypt) protects guessable passwords from a
    stolen table; a token is 256 random bits, which no one can guess from its
    sha256 either. A plain digest can also be looked up by an index, so
    checking a token costs one indexed read, not a scan with a slow hash.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def looks_like_token(secret: str) -> bool:
    return secret.startswith(TOKEN_PREFIX) and 20 < len(secret) < 200


@dataclass(frozen=True)
class NamePattern:
    """A project name (``numpy``) or a prefix (``acme-*``), compared as PEP 503 normalises."""

    text: str

    @classmethod
    def parse(cls, raw: str) -> NamePattern:
        """The normalised pattern; InvalidRequest for anything but a name or ``prefix*``."""
        value = raw.strip()
        if not value or len(value) > 200 or not _PATTERN.match(value):
            raise InvalidRequest(f"{raw[:80]!r} is not a project name or a prefix such as acme-*")
        if not value.endswith("*") and not is_project_name(value):
            raise InvalidRequest(f"{raw[:80]!r} is not a project name or a prefix such as acme-*")
        if value.endswith("*"):
            stem = value[:-1]
            tail = "-" if stem.endswith(("-", "_", ".")) else ""
            return cls(canonicalize_name(stem.rstrip("-_.")) + tail + "*")
        return cls(canonicalize_name(value))

    @property
    def is_prefix(self) -> bool:
        return self.text.endswith("*")

    def matches(self, canonical: str) -> bool:
        """Whether the normalised project name ``canonical`` falls under this pattern."""
        if self.is_prefix:
            return canonical.startswith(self.text[:-1])
        return canonical == self.text

    def covers(self, other: NamePattern) -> bool:
        """Whether every name ``other`` matches, this matches too (``acme-*`` covers ``acme-x*``)."""
        if not other.is_prefix:
            return self.matches(other.text)
        return self.is_prefix and other.text[:-1].startswith(self.text[:-1])


def patterns(raw: Iterable[str]) -> tuple[NamePattern, ...]:
    return tuple(NamePattern.parse(r) for r in raw if r.strip())


def first_match(found: Iterable[NamePattern], canonical: str) -> NamePattern | None:
    return next((p for p in found if p.matches(canonical)), None)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the passcode, or one token."""

    scope: str
    #: The projects an upload token is limited to; empty: any project not reserved.
    projects: tuple[NamePattern, ...] = ()
    token_id: int | None = None

    @property
    def label(self) -> str:
        return "passcode" if self.token_id is None else f"token {self.token_id}"

    def may(self, scope: str) -> bool:
        return _RANK[self.scope] >= _RANK[scope]

    def require(self, scope: str, action: str) -> None:
        """Forbidden (403) unless this principal's scope allows ``action``."""
        if not self.may(scope):
            needed = " or ".join(s for s in SCOPES if _RANK[s] >= _RANK[scope])
            raise Forbidden(f"this {self.scope} token may not {action}; that needs a {needed} token")

    def require_upload_to(self, canonical: str, reserved: tuple[NamePattern, ...]) -> None:
        """Forbidden unless this principal may upload into project ``canonical``.

        Admin may upload anywhere. An upload token limited to projects only to
        those; a reserved name needs a token whose projects cover it.
        """
        self.require("upload", "upload")
        if self.scope == "admin":
            return
        if self.projects:
            if first_match(self.projects, canonical) is None:
                allowed = ", ".join(p.text for p in self.projects)
                raise Forbidden(f"this token may not upload to {canonical!r}; it may upload to: {allowed}")
            return
        claimed = first_match(reserved, canonical)
        if claimed is not None:
            raise Forbidden(f"{canonical!r} is reserved ({claimed.text}): uploads need a token "
                            "scoped to it, or admin")


PASSCODE = Principal("admin")


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, without its secret."""

    id: int
    scope: str
    projects: tuple[NamePattern, ...]
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

    def principal(self) -> Principal:
        return Principal(self.scope, self.projects, self.id)

    def as_json(self) -> dict:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        return {"id": self.id, "scope": self.scope, "projects": [p.text for p in self.projects],
                "note": self.note, "created": iso(self.created), "expires": iso(self.expires),
                "last_used": iso(self.last_used), "revoked": iso(self.revoked)}


@dataclass(frozen=True)
class NewToken:
    """What ``token create`` asks for, checked."""

    scope: str
    projects: tuple[NamePattern, ...] = field(default=())
    expires_in: timedelta | None = None
    note: str = ""

    @classmethod
    def checked(cls, scope: str, projects: Iterable[str] = (), expires_in: timedelta | None = None,
                note: str = "") -> NewToken:
        """InvalidRequest for an unknown scope, a bad project pattern or a long note."""
        if scope not in SCOPES:
            raise InvalidRequest(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        found = patterns(projects)
        if found and scope != "upload":
            raise InvalidRequest("only upload tokens are limited to projects")
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidRequest("expires must be a positive duration such as 90d")
        note = " ".join(note.split())
        why = problem(note, 200)
        if why is not None:
            raise InvalidRequest(f"the note {why}")
        return cls(scope, found, expires_in, note)
