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


def test_0003_repairs_files_held_under_another_project(database_url: str) -> None:
    import json
    from datetime import UTC, datetime

    from sqlalchemy import text

    config = alembic_config(database_url)
    command.upgrade(config, "0002")
    now = datetime.now(UTC)
    engine = create_engine(database_url)

    def project(connection, name: str, private: bool = False) -> int:  # type: ignore[no-untyped-def]
        return connection.execute(text(
            "INSERT INTO projects (name, display_name, private, serial, created) "
            "VALUES (:name, :name, :private, 1, :now) RETURNING id"),
            {"name": name, "private": private, "now": now}).scalar_one()

    def file(connection, project_id: int, filename: str, origin: str) -> None:  # type: ignore[no-untyped-def]
        connection.execute(text(
            "INSERT INTO files (project_id, filename, version, packagetype, size, sha256, yanked,"
            " upload_time, origin, storage_key, stored) VALUES (:project, :filename, '1.0',"
            " 'sdist', 1, :sha, false, :now, :origin, :key, true)"),
            {"project": project_id, "filename": filename, "sha": "0" * 64, "now": now,
             "origin": origin, "key": f"00/00/{'0' * 64}/{filename}"})

    def entry(filename: str) -> dict:
        return {"filename": filename, "url": f"https://files.invalid/{filename}", "hashes": {}}

    try:
        with engine.begin() as connection:
            evil, alpha = project(connection, "evilproj"), project(connection, "alpha", True)
            file(connection, evil, "victim-1.0-py3-none-any.whl", "cached")   # the poisoning
            file(connection, evil, "evilproj-1.0.tar.gz", "cached")
            file(connection, alpha, "beta-1.0.tar.gz", "uploaded")           # misfiled by hand
            file(connection, alpha, "alpha-1.0.tar.gz", "uploaded")
            file(connection, alpha, "alpha-1.0.egg", "uploaded")             # no wheel/sdist name
            for name, entries in (("evilproj", ["evilproj-1.0.tar.gz", "victim-1.0.tar.gz",
                                                "evilproj-1.0.exe"]),
                                  ("clean", ["clean-1.0.tar.gz", "Clean-2.0.tar.gz"])):
                connection.execute(text(
                    "INSERT INTO upstream_pages (name, data, fetched, checked, rendered) "
                    "VALUES (:name, :data, :now, :now, 'stored rendering')"),
                    {"name": name, "data": json.dumps([entry(f) for f in entries]), "now": now})

        command.upgrade(config, "head")

        with engine.connect() as connection:
            files: dict[str, str] = dict(connection.execute(text(
                "SELECT f.filename, p.name FROM files f JOIN projects p ON p.id = f.project_id")
            ).all())
            beta = connection.execute(text(
                "SELECT private FROM projects WHERE name = 'beta'")).scalar_one()
            pages = {name: (json.loads(data), rendered) for name, data, rendered in
                     connection.execute(text("SELECT name, data, rendered FROM upstream_pages"))}
    finally:
        engine.dispose()
    assert files == {"evilproj-1.0.tar.gz": "evilproj", "beta-1.0.tar.gz": "beta",
                     "alpha-1.0.tar.gz": "alpha", "alpha-1.0.egg": "alpha"}
    assert beta
    assert [e["filename"] for e in pages["evilproj"][0]] == ["evilproj-1.0.tar.gz"]
    assert pages["evilproj"][1] is None
    assert len(pages["clean"][0]) == 2 and pages["clean"][1] == "stored rendering"
