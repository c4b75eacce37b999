"""Database adapter: engine, sessions and migrations."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Executable, Row, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from havarti.errors import unless_full

__all__ = ["Database", "alembic_config", "unless_full"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
#: Postgres advisory lock key held while migrating (any constant unique to Havarti).
MIGRATION_LOCK = 0x4861766172


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            # pre_ping: a Postgres restart is survived without restarting Havarti.
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def first(self, statement: Executable, **params: Any) -> Row | None:
        """The first row of a read, on a plain connection: a third of an ORM session's cost."""
        with self.engine.connect() as connection:
            return connection.execute(statement, params).first()

    def upgrade(self) -> None:
        """Apply every Alembic migration (idempotent)."""
        from alembic import command

        config = alembic_config(self.url)
        if self.engine.dialect.name != "postgresql":
            command.upgrade(config, "head")
            return
        # Web and downloader processes often start together on a fresh database:
        # one migrates, the others wait on this lock, then find nothing to do.
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets readers and one writer work at once across gunicorn workers.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
