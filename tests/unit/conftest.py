"""Unit-test fixtures: a migrated SQLite database per test, cheaply."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from havarti.db import Database


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database file, copied for each test (migrating costs more than a test)."""
    path = tmp_path_factory.mktemp("template") / "havarti.db"
    template = Database(f"sqlite:///{path}")
    template.upgrade()
    template.dispose()
    return path


@pytest.fixture
def db(tmp_path: Path, migrated: Path) -> Iterator[Database]:
    shutil.copyfile(migrated, tmp_path / "havarti.db")
    database = Database(f"sqlite:///{tmp_path / 'havarti.db'}")
    yield database
    database.dispose()
