"""API tokens in the database, so every web process sees the same ones at once.

Nothing here caches a token's validity: each check is one indexed read, so a
revocation is refused by every process on its next request (see
``bench/tokens.py`` for what the read costs).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update

from havarti.db import Database
from havarti.db.models import AuditLog, Token
from havarti.domain.access import NewToken, TokenRecord, new_secret, patterns, token_hash
from havarti.errors import NotFound

#: "Last used" is written at most this often per token: a busy CI must not cost a write a request.
TOUCH_EVERY = timedelta(minutes=1)
_BY_HASH = select(Token.id, Token.scope, Token.projects, Token.note, Token.created,
                  Token.expires, Token.last_used, Token.revoked).where(Token.hash == bindparam("hash"))


def _record(row: Any) -> TokenRecord:
    return TokenRecord(row.id, row.scope, patterns(row.projects.split()), row.note, row.created,
                       row.expires, row.last_used, row.revoked)


class TokenRepository:
    """Create, find, list and revoke tokens; each change audit-logged."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, new: NewToken, remote_addr: str | None = None) -> tuple[str, TokenRecord]:
        """Store a new token; returns its secret (shown once, never stored) and its record."""
        secret = new_secret()
        now = datetime.now(UTC)
        projects = " ".join(p.text for p in new.projects)
        with self.db.session() as session:
            row = Token(hash=token_hash(secret), scope=new.scope, projects=projects, note=new.note,
                        created=now, expires=now + new.expires_in if new.expires_in else None)
            session.add(row)
            session.flush()
            session.add(AuditLog(action="token-create", project="*", remote_addr=remote_addr,
                                 detail=f"id={row.id} scope={new.scope} projects={projects or '*'}"
                                        f" note={new.note!r}"))
            record = _record(row)
        return secret, record

    def find(self, secret: str) -> TokenRecord | None:
        """The token whose secret this is, revoked and expired ones too (to say why), or None."""
        row = self.db.first(_BY_HASH, hash=token_hash(secret))
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
        with self.db.session() as session:
            return [_record(t) for t in session.scalars(select(Token).order_by(Token.id))]

    def revoke(self, token_id: int, remote_addr: str | None = None) -> TokenRecord:
        """Mark the token revoked (kept, so its uses and revocation stay visible); NotFound if none."""
        now = datetime.now(UTC)
        with self.db.session() as session:
            row = session.get(Token, token_id)
            if row is None:
                raise NotFound(f"no token {token_id}")
            if row.revoked is None:
                row.revoked = now
                session.add(AuditLog(action="token-revoke", project="*", remote_addr=remote_addr,
                                     detail=f"id={token_id}"))
            return _record(row)
