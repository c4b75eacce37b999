"""Every migration, one at a time, on a fresh SQLite file and a fresh Postgres database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from havarti.db import Database, alembic_config
from havarti.db.models import Base
from tests.support.server import clean_env
from tests.support.services import postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_database() as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_each_migration_applies_and_the_result_matches_the_models(database_url: str) -> None:
    config = alembic_config(database_url)
    revisions = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
    assert revisions, "no migrations found"
    for revision in revisions:
        command.upgrade(config, revision.revision)

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert current == revisions[-1].revision
    assert set(Base.metadata.tables) <= tables
    assert differences == [], "the models and the migrations disagree"


def test_upgrade_is_idempotent_and_downgrade_to_base_works(database_url: str) -> None:
    database = Database(database_url)
    try:
        database.upgrade()
        database.upgrade()
        command.downgrade(alembic_config(database_url), "base")
        with database.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        database.upgrade()
    finally:
        database.dispose()


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://"])
def test_db_upgrade_accepts_the_url_forms_paas_hand_out(scheme: str, tmp_path: Path) -> None:
    with postgres_database() as url:
        heroku_style = scheme + url.split("://", 1)[1]
        result = subprocess.run([sys.executable, "-m", "havarti.cli", "db", "upgrade"],
                                env=clean_env({"DATABASE_URL": heroku_style,
                                               "PACKAGE_CACHE": str(tmp_path)}),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "database is up to date" in result.stdout
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as connection:
                assert set(Base.metadata.tables) <= set(inspect(connection).get_table_names())
        finally:
            engine.dispose()
