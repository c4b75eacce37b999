"""API tokens in the database, so every web process sees the same ones at once.

Nothing here caches a token's validity: each check is one indexed read, so a
revocation is refused by every process on its next request (see
``bench/tokens.py`` for what the read costs). Only the secret's hash is
stored (havarti.domain.access.token_hash says why a plain sha256 suffices).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update

from havarti.db import Database
from havarti.db.models import AuditLog, Token
from havarti.errors import NotFound
from havarti.records import TokenRecord

#: "Last used" is written at most this often per token: a busy CI must not cost a write a request.
TOUCH_EVERY = timedelta(minutes=1)
_BY_HASH = select(Token.id, Token.scope, Token.projects, Token.note, Token.created,
                  Token.expires, Token.last_used, Token.revoked).where(Token.hash == bindparam("hash"))


def _record(row: Any) -> TokenRecord:
    return TokenRecord(row.id, row.scope, tuple(row.projects.split()), row.note, row.created,
                       row.expires, row.last_used, row.revoked)


class TokenRepository:
    """Create, find, list and revoke tokens; each change audit-logged."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, token_hash: str, scope: str, projects: tuple[str, ...],
               expires: datetime | None, note: str, remote_addr: str | None = None) -> TokenRecord:
        """Store a token by its hash."""
        joined = " ".join(projects)
        with self.db.session() as session:
            row = Token(hash=token_hash, scope=scope, projects=joined, note=note,
                        created=datetime.now(UTC), expires=expires)
            session.add(row)
            session.flush()
            session.add(AuditLog(action="token-create", project="*", remote_addr=remote_addr,
                                 detail=f"id={row.id} scope={scope} projects={joined or '*'}"
                                        f" note={note!r}"))
            return _record(row)

    def find(self, token_hash: str) -> TokenRecord | None:
        """The token of this hash, revoked and expired ones too (to say why), or None."""
        row = self.db.first(_BY_HASH, hash=token_hash)
        return _record(row) if row is not None else None

    def touch(self, record: TokenRecord, now: datetime) -> None:
        """Note a use, unless one was noted within TOUCH_EVERY (by any process)."""
        if record.last_used is not None and now - record.last_used < TOUCH_EVERY:
            return
        with self.db.session() as session:
            session.execute(update(Token).where(
                Token.id == record.id,
                or_(Token.last_used.is_(None), Token.last_used < now - TOUCH_EVERY),
            ).values(last_used=now))

    def list(self) -> list[TokenRecord]:
        """Every token, oldest first."""
        with self.db.session() as session:
            return [_record(t) for t in session.scalars(select(Token).order_by(Token.id))]

    def revoke(self, token_id: int, remote_addr: str | None = None) -> TokenRecord:
        """Mark the token revoked (kept, so its uses and revocation stay visible); NotFound if none."""
        with self.db.session() as session:
            row = session.get(Token, token_id)
            if row is None:
                raise NotFound(f"no token {token_id}")
            if row.revoked is None:
                row.revoked = datetime.now(UTC)
                session.add(AuditLog(action="token-revoke", project="*", remote_addr=remote_addr,
                                     detail=f"id={token_id}"))
            return _record(row)
