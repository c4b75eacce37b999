"""Who may do what: token secrets, scopes, and name patterns (``acme-*``).

Plain logic, no database or web: :mod:`havarti.db.tokens` stores tokens,
:mod:`havarti.web.auth` reads credentials off a request and asks the
functions here.

Scopes are ranked: ``admin`` may do all an ``upload`` token may, which may
read. ``PASSCODE`` counts as admin.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from havarti.distributions import NamePattern, first_match, patterns
from havarti.domain.text import problem
from havarti.errors import Forbidden, InvalidRequest
from havarti.records import TokenRecord

if TYPE_CHECKING:
    from havarti.domain.ports import TokenStore

SCOPES = ("read", "upload", "admin")
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}
#: Every token starts with this: a log scanner (or a person) can tell one from a password.
TOKEN_PREFIX = "hvt_"


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


def principal_of(record: TokenRecord) -> Principal:
    """What a stored token may do."""
    return Principal(record.scope, tuple(NamePattern(p) for p in record.projects), record.id)


def checked_note(note: str) -> str:
    """A note on one line; InvalidRequest if no database could store it."""
    note = " ".join(note.split())
    why = problem(note, 200)
    if why is not None:
        raise InvalidRequest(f"the note {why}")
    return note


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
        return cls(scope, found, expires_in, checked_note(note))


def issue(store: TokenStore, new: NewToken, remote_addr: str | None = None) -> tuple[str, TokenRecord]:
    """Create a token in ``store``: its secret (shown once, never stored) and its record."""
    secret = new_secret()
    expires = datetime.now(UTC) + new.expires_in if new.expires_in else None
    record = store.create(token_hash(secret), new.scope, tuple(p.text for p in new.projects),
                          expires, new.note, remote_addr)
    return secret, record


def lookup(store: TokenStore, secret: str) -> TokenRecord | None:
    """The stored token whose secret this is (revoked and expired ones too), or None."""
    return store.find(token_hash(secret))
