"""accept_upload against a real SQLite database and local storage: all or nothing."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from havarti.db import Database
from havarti.db.files import Files
from havarti.db.models import ORIGIN_UPLOADED, File, Project
from havarti.db.projects import get_or_create_project
from havarti.domain.uploads import Upload, accept_upload
from havarti.errors import Conflict, InvalidUpload, UploadTooLarge
from havarti.storage.base import Readable
from havarti.storage.local import LocalStorage
from tests.support import dists
from tests.support.uploads import stored_objects, upload_form

MAX = 50_000


class HookedStorage(LocalStorage):
    """Local storage that runs ``hook`` once, just before the first write: a rival upload."""

    hook: Callable[[], None] | None = None

    def write(self, key: str, stream: Readable, size: int | None = None) -> int:
        hook, self.hook = self.hook, None
        if hook:
            hook()
        return super().write(key, stream, size)




@pytest.fixture
def storage(tmp_path: Path) -> HookedStorage:
    return HookedStorage(tmp_path / "files")


def upload(dist: dists.Dist, data: bytes | None = None, filename: str | None = None,
           **overrides: str | None) -> Upload:
    form = upload_form(dist, **overrides)
    return Upload(name=form.get("name", ""), version=form.get("version", ""),
                  filename=filename or dist.filename,
                  content=io.BytesIO(dist.data if data is None else data),
                  sha256_digest=form.get("sha256_digest"), md5_digest=form.get("md5_digest"),
                  blake2_256_digest=form.get("blake2_256_digest"))


def rows(db: Database) -> tuple[int, int]:
    with db.session() as session:
        return (session.scalar(select(func.count(File.id))) or 0,
                session.scalar(select(func.count(Project.id))) or 0)


def test_a_wheel_is_stored_with_its_metadata(db, storage, tmp_path):
    dist = dists.wheel("Good_Pkg", "1.0", requires_python=">=3.9", summary="Good things",
                       description="# Good", description_content_type="text/markdown")
    row = accept_upload(Files(db), storage, upload(dist), MAX)
    assert (row.filename, row.version, row.packagetype, row.size) == \
        (dist.filename, "1.0", "bdist_wheel", len(dist.data))
    assert row.sha256 == dist.sha256
    assert row.md5 == hashlib.md5(dist.data).hexdigest()
    assert row.blake2_256 == hashlib.blake2b(dist.data, digest_size=32).hexdigest()
    assert row.requires_python == ">=3.9"
    with db.session() as session:
        assert session.scalar(select(File.origin)) == ORIGIN_UPLOADED
    assert (row.summary, row.description, row.description_content_type) == \
        ("Good things", "# Good", "text/markdown")
    assert row.metadata_sha256 == hashlib.sha256(dist.metadata).hexdigest()
    assert sorted(stored_objects(tmp_path).values()) == sorted([dist.data, dist.metadata])
    with db.session() as session:
        project = session.scalar(select(Project))
        assert (project.name, project.display_name, project.private) == \
            ("good-pkg", "Good_Pkg", True)
        serial = project.serial
    accept_upload(Files(db), storage, upload(dists.sdist("good-pkg", "1.0")), MAX)
    with db.session() as session:
        assert session.scalar(select(Project.serial)) == serial + 1


def test_an_sdist_offers_no_metadata_file(db, storage, tmp_path):
    dist = dists.sdist("plain", "1.0", requires_python=">=3.10")
    row = accept_upload(Files(db), storage, upload(dist), MAX)
    assert row.metadata_sha256 is None and row.requires_python == ">=3.10"
    assert list(stored_objects(tmp_path).values()) == [dist.data]


def _zip(files: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return buffer.getvalue()


REFUSALS = [
    ("bad filename", dict(filename="refused.exe"), InvalidUpload, "filename"),
    ("path", dict(filename="../refused-1.0-py3-none-any.whl"), InvalidUpload, "filename"),
    ("form name", dict(name="other"), InvalidUpload, "project"),
    ("no name", dict(name=None), InvalidUpload, "name"),
    ("form version", dict(version="1.0.0"), InvalidUpload, "version"),
    ("sha256", dict(sha256_digest="0" * 64), InvalidUpload, "sha256_digest"),
    ("md5", dict(md5_digest="0" * 32), InvalidUpload, "md5_digest"),
    ("blake2", dict(blake2_256_digest="0" * 64), InvalidUpload, "blake2_256_digest"),
    ("empty", dict(data=b"", sha256_digest=None, md5_digest=None, blake2_256_digest=None),
     InvalidUpload, "empty"),
    ("not zip", dict(data=b"junk" * 10, sha256_digest=None, md5_digest=None,
                     blake2_256_digest=None), InvalidUpload, "zip"),
    ("too large", dict(data=dists.wheel("refused", "1.0", payload_size=MAX).data,
                       sha256_digest=None, md5_digest=None, blake2_256_digest=None),
     UploadTooLarge, "MAX_UPLOAD_SIZE"),
    ("metadata project", dict(data=dists.wheel("someone-else", "1.0").data, sha256_digest=None,
                              md5_digest=None, blake2_256_digest=None), InvalidUpload,
     "someone-else"),
    ("metadata version", dict(data=dists.wheel("refused", "2.0").data, sha256_digest=None,
                              md5_digest=None, blake2_256_digest=None), InvalidUpload, "version"),
    # Fields no database column can hold as they are (Postgres: NUL, over 255 characters).
    ("long filename", dict(filename="refused-1.0-" + "x" * 200 + "-none-any.whl"), InvalidUpload,
     "filename is longer than 200 bytes"),
    ("NUL in filename", dict(filename="refused-1.0-py3-none-any\0.whl"), InvalidUpload,
     "filename contains a control character"),
    ("name not a name", dict(name="refused\r\nX-Evil: 1"), InvalidUpload,
     "not a valid project name"),
    ("NUL in version", dict(version="1.0\0"), InvalidUpload, "version contains a control"),
    ("digest not hex", dict(sha256_digest="é" * 64), InvalidUpload,
     "sha256_digest is not a 64-digit hex digest"),
    ("md5 not hex", dict(md5_digest="z" * 32), InvalidUpload, "md5_digest is not"),
    ("metadata version too long for int()", dict(
        data=_zip({"refused-1.0.dist-info/METADATA": b"Name: refused\nVersion: " + b"1" * 5000}),
        sha256_digest=None, md5_digest=None, blake2_256_digest=None),
     InvalidUpload, "metadata names version"),
    *[(f"metadata {label}", dict(data=dists.wheel("refused", "1.0", **dict[str, Any](fields)).data,
                                 sha256_digest=None, md5_digest=None, blake2_256_digest=None),
       InvalidUpload, reason) for label, fields, reason in [
        ("long requires-python", {"requires_python": ">=3," + "!=3.1," * 60},
         "Requires-Python is longer than 255"),
        ("NUL requires-python", {"requires_python": ">=3\0"},
         "Requires-Python contains a control character"),
        ("long content type", {"description": "x", "description_content_type": "t" * 256},
         "Description-Content-Type is longer than 255"),
        ("NUL summary", {"summary": "nul\0summary"}, "Summary contains a NUL"),
        ("NUL description", {"description": "a\0b"}, "description contains a NUL"),
    ]],
]


@pytest.mark.parametrize("case,overrides,error,reason", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_store_nothing(db, storage, tmp_path, case, overrides, error, reason):
    dist = dists.wheel("refused", "1.0")
    with pytest.raises(error, match=reason):
        accept_upload(Files(db), storage, upload(dist, **overrides), MAX)
    assert rows(db) == (0, 0)
    assert stored_objects(tmp_path) == {}


def test_a_filename_over_246_characters_is_a_400_not_a_storage_failure(db, storage, tmp_path):
    dist = dists.wheel("a" * 240, "1.0")
    assert len(dist.filename) > 246
    with pytest.raises(InvalidUpload, match="filename is longer than"):
        accept_upload(Files(db), storage, upload(dist), MAX)
    assert rows(db) == (0, 0) and stored_objects(tmp_path) == {}


def test_metadata_text_is_read_as_utf8(db, storage):
    dist = dists.wheel("accents", "1.0", summary="Fromage affiné ☃",
                       description="# Crème\n\nbrûlée")
    row = accept_upload(Files(db), storage, upload(dist), MAX)
    assert row.summary == "Fromage affiné ☃" and row.description == "# Crème\n\nbrûlée"


def test_a_filename_is_never_replaced(db, storage, tmp_path):
    first = dists.wheel("fixed", "1.0")
    accept_upload(Files(db), storage, upload(first), MAX)
    before = stored_objects(tmp_path)
    second = dists.wheel("fixed", "1.0", payload_size=10)
    with pytest.raises(Conflict, match="already exists"):
        accept_upload(Files(db), storage, upload(second), MAX)
    assert stored_objects(tmp_path) == before
    assert rows(db) == (1, 1)


@pytest.mark.parametrize("same_bytes", [True, False])
def test_losing_a_race_for_a_filename(db, storage, tmp_path, same_bytes):
    mine = dists.wheel("raced", "1.0", payload_size=100)
    theirs = mine if same_bytes else dists.wheel("raced", "1.0", payload_size=200)
    # The rival passes the same checks a moment earlier and commits while we write.
    storage.hook = lambda: accept_upload(Files(db), storage, upload(theirs), MAX)
    with pytest.raises(Conflict, match="already exists"):
        accept_upload(Files(db), storage, upload(mine), MAX)
    assert sorted(stored_objects(tmp_path).values()) == sorted([theirs.data, theirs.metadata])
    with db.session() as session:
        assert session.scalar(select(File.sha256)) == theirs.sha256


def test_losing_a_race_to_a_variant_of_the_filename(db, storage, tmp_path):
    mine = dists.wheel("raced-variant", "1.0", payload_size=100)
    theirs = dists.wheel("raced-variant", "1.0", payload_size=200)
    # The rival's filename is ours written another way; it commits while we write.
    storage.hook = lambda: accept_upload(Files(db), storage, upload(
        theirs, filename="Raced.Variant-1.0-py3-none-any.whl"), MAX)
    with pytest.raises(Conflict, match="already exists as Raced.Variant-1.0"):
        accept_upload(Files(db), storage, upload(mine), MAX)
    assert sorted(stored_objects(tmp_path).values()) == sorted([theirs.data, theirs.metadata])
    assert rows(db) == (1, 1)


def test_two_files_creating_one_project_at_once(db, storage):
    wheel, sdist = dists.wheel("twins", "1.0"), dists.sdist("twins", "1.0")
    calls = []

    def stale_lookup(session: Session, name: str) -> Project:
        calls.append(name)
        if len(calls) > 1:
            return get_or_create_project(session, name)
        # We looked and found no project; the rival creates it before our insert.
        accept_upload(Files(db), storage, upload(sdist), MAX)
        project = Project(name="twins", display_name="twins", private=False, serial=0)
        session.add(project)
        session.flush()
        return project

    accept_upload(Files(db, project_lookup=stale_lookup), storage, upload(wheel), MAX)
    assert len(calls) == 2
    assert rows(db) == (2, 1)
