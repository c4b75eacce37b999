"""The downloader's rules for rows: a file belongs to its filename's project, and a stored
row is reused only for that project and the sha256 the page promises."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from havarti.db import Database
from havarti.db.files import Files
from havarti.db.leases import LeaseTable
from havarti.db.models import ORIGIN_CACHED, File, Project
from havarti.db.projects import get_or_create_project
from havarti.domain.coordination import Leases
from havarti.domain.fetch import Fetcher
from havarti.errors import DownloadFailed
from havarti.records import PageFile
from havarti.storage import storage_key
from havarti.storage.local import LocalStorage
from havarti.upstream.client import FileStream

FILENAME = "victim-1.0-py3-none-any.whl"
GOOD, EVIL = b"the real victim wheel", b"something else entirely"


class FakeUpstream:
    """The client's file interface: serves bytes by URL through the real FileStream bounds."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    @contextmanager
    def stream(self, url: str, limit: int | None = None) -> Iterator[FileStream]:
        self.requests.append(url)
        yield FileStream(httpx.Response(200, stream=httpx.ByteStream(self.files[url])), limit,
                         1, 10.0)


def entry(data: bytes, filename: str = FILENAME, sized: bool = True) -> PageFile:
    return PageFile(filename=filename, url=f"https://files.invalid/{filename}",
                        hashes={"sha256": hashlib.sha256(data).hexdigest()},
                        size=len(data) if sized else None)


@pytest.fixture
def upstream() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files")


@pytest.fixture
def fetcher(db: Database, storage: LocalStorage, upstream: FakeUpstream, tmp_path: Path) -> Fetcher:
    return Fetcher(Files(db), Leases(LeaseTable(db)), storage, upstream,  # type: ignore[arg-type]
                   tmp_path / "spool", max_file_size=1000)


def store_row(db: Database, storage: LocalStorage, project: str, data: bytes,
              filename: str = FILENAME) -> None:
    sha256 = hashlib.sha256(data).hexdigest()
    key = storage_key(sha256, filename)
    storage.write(key, io.BytesIO(data), len(data))
    with db.session() as session:
        owner = get_or_create_project(session, project)
        session.add(File(project_id=owner.id, filename=filename, version="1.0",
                         packagetype="bdist_wheel", size=len(data), sha256=sha256,
                         origin=ORIGIN_CACHED, storage_key=key, stored=True))


def row_of(db: Database, filename: str = FILENAME) -> tuple[str, str]:
    with db.session() as session:
        name, sha256 = session.execute(select(Project.name, File.sha256).join(Project)
                                       .where(File.filename == filename)).one()
    return name, sha256


def test_a_row_of_the_same_project_and_sha256_is_reused(db, storage, upstream, fetcher):
    store_row(db, storage, "victim", GOOD)
    row = fetcher.fetch("victim", entry(GOOD))
    assert row.sha256 == hashlib.sha256(GOOD).hexdigest()
    assert upstream.requests == []


def test_another_projects_page_cannot_fetch_a_file_named_for_victim(db, fetcher, upstream):
    upstream.files[entry(EVIL).url] = EVIL
    with pytest.raises(DownloadFailed, match="not a file of evilproj"):
        fetcher.fetch("evilproj", entry(EVIL))
    assert upstream.requests == []


def test_a_poisoned_row_is_neither_reused_nor_overwritten(db, storage, upstream, fetcher):
    # As main before the fix stored it: evilproj's row under victim's filename.
    store_row(db, storage, "evilproj", EVIL)
    upstream.files[entry(GOOD).url] = GOOD
    with pytest.raises(DownloadFailed, match="another project"):
        fetcher.fetch("victim", entry(GOOD))
    assert row_of(db) == ("evilproj", hashlib.sha256(EVIL).hexdigest())


def test_a_row_with_another_sha256_is_fetched_again_and_updated(db, storage, upstream, fetcher):
    store_row(db, storage, "victim", EVIL)
    upstream.files[entry(GOOD).url] = GOOD
    row = fetcher.fetch("victim", entry(GOOD))
    assert upstream.requests == [entry(GOOD).url]
    assert row.sha256 == hashlib.sha256(GOOD).hexdigest()
    assert row_of(db) == ("victim", hashlib.sha256(GOOD).hexdigest())
    assert storage.read_bytes(row.storage_key) == GOOD


def test_a_file_listed_without_a_size_is_spooled_only_up_to_max_file_size(fetcher, upstream,
                                                                           tmp_path):
    big = b"x" * 1001
    upstream.files[entry(big, sized=False).url] = big
    with pytest.raises(DownloadFailed, match="more than 1000 bytes"):
        fetcher.fetch("victim", entry(big, sized=False))
    deadline = time.monotonic() + 5  # the spool goes just after the failure is told
    while list((tmp_path / "spool").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_file_listed_over_max_file_size_is_not_fetched(fetcher, upstream):
    big = b"x" * 1001
    with pytest.raises(DownloadFailed, match="MAX_FILE_SIZE"):
        fetcher.fetch("victim", entry(big))
    assert upstream.requests == []
