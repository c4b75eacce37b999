"""Uploads end to end: real twine and uv publish in, real pip and uv out, every refusal.

Each refusal checks what a user would: the status, the one-line reason (twine
prints the reason phrase), and that nothing was stored — the project page does
not list the file and no new object appeared under PACKAGE_CACHE/files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.clients import installed_version
from tests.support.fakeindex import FakeIndex
from tests.support.server import HavartiServer
from tests.support.uploads import assert_refused, post_upload, stored_objects

MAX_UPLOAD = 100_000


@pytest.fixture(scope="module")
def upstream_index() -> Iterator[FakeIndex]:
    fake = FakeIndex().start()
    yield fake
    fake.down()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, upstream_index: FakeIndex) -> Iterator[HavartiServer]:
    """One server for the module (tests use their own project names): it starts in seconds."""
    server = HavartiServer(tmp_path_factory.mktemp("upload") / "data", {
        "PASSCODE": PASSCODE, "FALLBACK": upstream_index.url, "UPSTREAM_TIMEOUT": "3",
        "MAX_UPLOAD_SIZE": str(MAX_UPLOAD)})
    server.start()
    yield server
    server.stop()


def listed(server: HavartiServer, project: str) -> list[str]:
    """Filenames the project's JSON page lists (none when the project is unknown)."""
    page = httpx.get(f"{server.index_url}{project}/",
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    if page.status_code == 404:
        return []
    assert page.status_code == 200, page.text
    return [f["filename"] for f in page.json()["files"]]


class NothingStored:
    """Snapshot the storage, then check a refused upload left no object and no row."""

    def __init__(self, server: HavartiServer, project: str) -> None:
        self.server, self.project = server, project
        self.before = stored_objects(server.data_dir)
        self.listed_before = listed(server, project)

    def check(self) -> None:
        assert stored_objects(self.server.data_dir) == self.before
        assert listed(self.server, self.project) == self.listed_before


# Real clients


@pytest.mark.parametrize("tool,path", [("twine", "/"), ("uv", "/legacy/"), ("twine", "/legacy/"),
                                       ("uv", "/")])
def test_real_client_uploads_then_installs(index, clients, tmp_path, tool, path):
    project = f"up-{tool}-{path.strip('/') or 'root'}"
    wheel = dists.wheel(project, "1.2.0", requires_python=">=3.8")
    sdist = dists.sdist(project, "1.2.0")
    files = [wheel.write(tmp_path), sdist.write(tmp_path)]
    upload = clients.twine_upload if tool == "twine" else clients.uv_publish
    result = upload(index.url + path, PASSCODE, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(listed(index, project)) == sorted([wheel.filename, sdist.filename])
    # The stored bytes are the uploaded ones.
    served = httpx.get(f"{index.url}/files/{project}/{wheel.filename}")
    assert hashlib.sha256(served.content).hexdigest() == wheel.sha256

    if (tool, path) not in (("twine", "/"), ("uv", "/legacy/")):
        return  # installing is the same whichever way the files came in
    module = project.replace("-", "_")
    installed, target = clients.pip_install(index.index_url, project)
    assert installed.returncode == 0, installed.stderr
    assert installed_version(target, module) == "1.2.0"
    installed, target = clients.uv_install(index.index_url, project)
    assert installed.returncode == 0, installed.stderr
    assert installed_version(target, module) == "1.2.0"


def test_twine_shows_the_reason_of_a_refusal(index, clients, tmp_path):
    dist = dists.wheel("twine-refused", "1.0")
    nothing = NothingStored(index, "twine-refused")
    result = clients.twine_upload(index.url + "/", "not-the-passcode", dist.write(tmp_path))
    assert result.returncode != 0
    assert "wrong or missing passcode" in " ".join((result.stdout + result.stderr).split())
    nothing.check()


def test_duplicate_with_twine_is_409_and_keeps_the_first_bytes(index, clients, tmp_path):
    first = dists.wheel("immutable", "1.0")
    result = clients.twine_upload(index.url + "/", PASSCODE, first.write(tmp_path / "a"))
    assert result.returncode == 0, result.stdout + result.stderr
    # Same filename, different bytes.
    second = dists.wheel("immutable", "1.0", payload_size=100)
    assert second.filename == first.filename and second.sha256 != first.sha256
    nothing = NothingStored(index, "immutable")
    result = clients.twine_upload(index.url + "/", PASSCODE, second.write(tmp_path / "b"))
    assert result.returncode != 0
    assert "409" in result.stdout + result.stderr
    nothing.check()
    served = httpx.get(f"{index.url}/files/immutable/{first.filename}")
    assert served.content == first.data


# Refusals, over plain HTTP (twine will not send most of them)


# PASSCODE unset (403, saying how to enable uploads): test_entrypoints.py's embedded default.


@pytest.mark.parametrize("password", [None, "wrong", PASSCODE + "x", ""])
def test_missing_or_wrong_passcode_is_401(index, password):
    dist = dists.wheel("auth-check", "1.0")
    nothing = NothingStored(index, "auth-check")
    response = post_upload(index.url, dist, password, path="/legacy/")
    assert_refused(response, 401, "passcode")
    assert response.headers["WWW-Authenticate"].lower().startswith("basic")
    nothing.check()


def test_any_username_is_accepted(index):
    dist = dists.wheel("any-user", "1.0")
    response = httpx.post(index.url + "/", auth=("someone-else", PASSCODE),
                          data={":action": "file_upload", "name": "any-user", "version": "1.0"},
                          files={"content": (dist.filename, dist.data)})
    assert response.status_code == 200, response.text
    assert listed(index, "any-user") == [dist.filename]


@pytest.mark.parametrize("filename", [
    "badname.txt", "badname-1.0.whl", "badname-1.0-py3-none-any.egg", "badname.tar.gz",
    "badname-notaversion!.tar.gz",
])
def test_invalid_filename(index, filename):
    dist = dists.wheel("badname", "1.0")
    nothing = NothingStored(index, "badname")
    response = post_upload(index.url, dist, PASSCODE, filename=filename)
    assert_refused(response, 400, "filename")
    nothing.check()


@pytest.mark.parametrize("filename", [
    "../pathy-1.0-py3-none-any.whl", "sub/pathy-1.0-py3-none-any.whl",
    "sub\\pathy-1.0-py3-none-any.whl", "pathy-1.0..1-py3-none-any.whl",
])
def test_paths_in_filename(index, filename):
    dist = dists.wheel("pathy", "1.0")
    nothing = NothingStored(index, "pathy")
    response = post_upload(index.url, dist, PASSCODE, filename=filename)
    assert_refused(response, 400, "filename")
    nothing.check()
    assert not any(p.name.startswith("pathy") for p in index.data_dir.parent.rglob("*.whl"))


@pytest.mark.parametrize("field,value,word", [
    ("name", "somebody-else", "project"),
    ("name", None, "name"),
    ("version", "1.0.1", "version"),
    # PEP 440 canonical forms compare, without stripping zeros: 1.0 and 1.0.0 are different.
    ("version", "1.0.0", "version"),
    ("version", None, "version"),
])
def test_form_differs_from_filename(index, field, value, word):
    dist = dists.wheel("formcheck", "1.0")
    nothing = NothingStored(index, "formcheck")
    response = post_upload(index.url, dist, PASSCODE, **{field: value})
    assert_refused(response, 400, word)
    nothing.check()


def test_form_matches_after_normalisation(index):
    dist = dists.wheel("Norm_Me.Please", "2.0a1")
    response = post_upload(index.url, dist, PASSCODE, name="norm-me-please", version="2.0.ALPHA1")
    assert response.status_code == 200, response.text
    assert listed(index, "norm-me-please") == [dist.filename]


@pytest.mark.parametrize("field", ["sha256_digest", "md5_digest", "blake2_256_digest"])
def test_wrong_digest(index, field):
    dist = dists.wheel("digests", "1.0")
    other = dists.wheel("digests", "1.0", payload_size=10)
    wrong = {"sha256_digest": other.sha256, "md5_digest": hashlib.md5(other.data).hexdigest(),
             "blake2_256_digest": hashlib.blake2b(other.data, digest_size=32).hexdigest()}[field]
    nothing = NothingStored(index, "digests")
    response = post_upload(index.url, dist, PASSCODE, **dict[str, Any]({field: wrong}))
    assert_refused(response, 400, field)
    nothing.check()


def test_empty_file(index):
    dist = dists.wheel("empty", "1.0")
    nothing = NothingStored(index, "empty")
    response = post_upload(index.url, dist, PASSCODE, data=b"", sha256_digest=None, md5_digest=None,
                           blake2_256_digest=None)
    assert_refused(response, 400, "empty")
    nothing.check()


@pytest.mark.parametrize("maker,kind", [(dists.wheel, "zip"), (dists.sdist, "tar.gz")])
def test_not_an_archive(index, maker, kind):
    dist = maker("garbled", "1.0")
    junk = b"this is not an archive at all\n" * 20
    nothing = NothingStored(index, "garbled")
    response = post_upload(index.url, dist, PASSCODE, data=junk, sha256_digest=None,
                           md5_digest=None, blake2_256_digest=None)
    assert_refused(response, 400, kind)
    nothing.check()


def test_archive_without_core_metadata(index):
    dist = dists.wheel("nometa", "1.0")
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("nometa/__init__.py", "")
    nothing = NothingStored(index, "nometa")
    response = post_upload(index.url, dist, PASSCODE, data=buffer.getvalue(), sha256_digest=None,
                           md5_digest=None, blake2_256_digest=None)
    assert_refused(response, 400, "metadata")
    nothing.check()


@pytest.mark.parametrize("maker", [dists.wheel, dists.sdist])
def test_metadata_names_another_project(index, maker):
    inside = maker("impostor", "1.0")
    # The archive says it is "victim", the filename and form say "impostor".
    victim = maker("victim", "1.0")
    nothing = NothingStored(index, "impostor")
    response = post_upload(index.url, inside, PASSCODE, data=victim.data, sha256_digest=None,
                           md5_digest=None, blake2_256_digest=None)
    assert_refused(response, 400, "metadata", "victim")
    nothing.check()
    assert listed(index, "victim") == []


def test_a_gzip_bomb_sdist_is_400_without_inflating_it(index):
    # 90 MiB of zeros in under MAX_UPLOAD_SIZE, PKG-INFO at the end (the probe: 1 GiB in 6 s).
    bomb = dists.gzip_bomb_sdist("gzbomb", "1.0", inflated=90 * 2**20)
    assert len(bomb.data) < MAX_UPLOAD
    nothing = NothingStored(index, "gzbomb")
    response = post_upload(index.url, bomb, PASSCODE)
    assert_refused(response, 400, "decompresses to more than")
    nothing.check()


def test_metadata_names_another_version(index):
    claimed = dists.wheel("versioned", "2.0")
    actual = dists.wheel("versioned", "1.0")
    nothing = NothingStored(index, "versioned")
    response = post_upload(index.url, claimed, PASSCODE, data=actual.data, sha256_digest=None,
                           md5_digest=None, blake2_256_digest=None)
    assert_refused(response, 400, "metadata", "version")
    nothing.check()


def test_over_max_upload_size_is_413(index):
    # Just over the limit: the file's own size is checked.
    dist = dists.wheel("bulky", "1.0", payload_size=MAX_UPLOAD + 1000)
    assert MAX_UPLOAD < len(dist.data) < MAX_UPLOAD + 2**20
    nothing = NothingStored(index, "bulky")
    response = post_upload(index.url, dist, PASSCODE)
    assert_refused(response, 413, "MAX_UPLOAD_SIZE")
    nothing.check()


def test_far_over_max_upload_size_is_413_before_reading(index):
    # Far over: refused from Content-Length, before the body is spooled.
    dist = dists.wheel("very-bulky", "1.0", payload_size=MAX_UPLOAD + 2**21)
    nothing = NothingStored(index, "very-bulky")
    response = post_upload(index.url, dist, PASSCODE)
    assert_refused(response, 413, "MAX_UPLOAD_SIZE")
    nothing.check()


def test_exactly_max_upload_size_is_accepted(index):
    # Tune the payload so the whole wheel is exactly the limit.
    payload = MAX_UPLOAD
    for _ in range(10):
        dist = dists.wheel("edge", "1.0", payload_size=payload)
        if len(dist.data) == MAX_UPLOAD:
            break
        payload += MAX_UPLOAD - len(dist.data)
    assert len(dist.data) == MAX_UPLOAD
    response = post_upload(index.url, dist, PASSCODE)
    assert response.status_code == 200, response.text


def test_duplicate_is_409_and_the_file_stays_byte_identical(index):
    first = dists.sdist("dupe", "1.0")
    assert post_upload(index.url, first, PASSCODE).status_code == 200
    stored = stored_objects(index.data_dir)
    second = dists.sdist("dupe", "1.0", summary="different bytes")
    assert second.data != first.data
    for attempt in (first, second):
        response = post_upload(index.url, attempt, PASSCODE)
        assert_refused(response, 409, "already exists")
        assert stored_objects(index.data_dir) == stored
    assert httpx.get(f"{index.url}/files/dupe/{first.filename}").content == first.data
    assert listed(index, "dupe") == [first.filename]


def renamed(dist: dists.Dist, filename: str) -> dists.Dist:
    return dataclasses.replace(dist, filename=filename)


@pytest.mark.parametrize("project,version,variant", [
    ("variant-a", "1.0", "Variant_A-1.0-py3-none-any.whl"),
    ("variant-b", "1.0", "variant.b-1.0-py3-none-any.whl"),
    ("variant-c", "1.0", "VARIANT_C-1.0-py3-none-any.whl"),
    ("variant-d", "1.0.0", "variant_d-1.0.0-py3-none-any.whl"),
    ("variant-e", "1.0", "Variant.E-1.0.tar.gz"),
])
def test_a_variant_of_an_existing_filename_is_409(index, project, version, variant):
    """Filenames that differ only in how the project name or version is written are one
    file to installers: the second is refused, as on PyPI."""
    make = dists.sdist if variant.endswith(".tar.gz") else dists.wheel
    first = make(project, "1.0")
    assert post_upload(index.url, first, PASSCODE).status_code == 200
    attempt = renamed(make(project, version, summary="other bytes"), variant)
    nothing = NothingStored(index, project)
    assert_refused(post_upload(index.url, attempt, PASSCODE), 409, "already exists", first.filename)
    nothing.check()
    # Another version, or other tags, are other files.
    other = renamed(dists.wheel(project, "1.0", payload_size=10), first.filename.replace(
        "py3-none-any", "py2.py3-none-any")) if make is dists.wheel else make(project, "1.1")
    assert post_upload(index.url, other, PASSCODE).status_code == 200


def test_concurrent_uploads_of_two_variants(index):
    first = dists.wheel("variant-race", "1.0", payload_size=5000)
    second = renamed(dists.wheel("variant-race", "1.0", payload_size=6000),
                     "Variant_Race-1.0-py3-none-any.whl")
    assert sorted(upload_at_once(index, [first, second])) == [200, 409]
    assert len(listed(index, "variant-race")) == 1


def upload_at_once(server: HavartiServer, files: list[dists.Dist]) -> list[int]:
    """Upload ``files`` concurrently, released together; the statuses."""
    statuses: list[int] = []
    barrier = threading.Barrier(len(files))

    def send(dist: dists.Dist) -> None:
        barrier.wait()
        statuses.append(post_upload(server.url, dist, PASSCODE).status_code)

    threads = [threading.Thread(target=send, args=(d,)) for d in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.parametrize("same_bytes", [True, False])
def test_concurrent_uploads_of_one_filename(index, same_bytes):
    project = f"racer-{same_bytes}".lower()
    contenders = [dists.wheel(project, "1.0", payload_size=5000),
                  dists.wheel(project, "1.0", payload_size=5000 if same_bytes else 6000)]
    assert sorted(upload_at_once(index, contenders)) == [200, 409]
    served = httpx.get(f"{index.url}/files/{project}/{contenders[0].filename}").content
    assert served in (contenders[0].data, contenders[1].data)
    # The loser's bytes were not left behind.
    objects = stored_objects(index.data_dir)
    whl = [data for key, data in objects.items() if key.endswith(contenders[0].filename)]
    assert whl == [served]


def test_concurrent_uploads_to_a_new_project_both_land(index):
    files = [dists.wheel("fresh-race", "1.0"), dists.sdist("fresh-race", "1.0")]
    assert upload_at_once(index, files) == [200, 200]
    assert sorted(listed(index, "fresh-race")) == sorted(f.filename for f in files)


def test_unsupported_action_and_missing_content(index):
    dist = dists.wheel("formless", "1.0")
    response = post_upload(index.url, dist, PASSCODE, **dict[str, Any]({":action": "remove_pkg"}))
    assert_refused(response, 400, "action")
    response = httpx.post(index.url + "/", auth=("havarti", PASSCODE),
                          data={":action": "file_upload", "name": "formless", "version": "1.0"})
    assert_refused(response, 400, "content")
    assert listed(index, "formless") == []


def test_metadata_file_is_read_from_the_upload(index, tmp_path: Path):
    # requires-python comes from the wheel, not from the (absent) form field.
    dist = dists.wheel("meta-source", "1.0", requires_python=">=3.10",
                       description="# Hello", description_content_type="text/markdown")
    response = post_upload(index.url, dist, PASSCODE)
    assert response.status_code == 200, response.text
    page = httpx.get(f"{index.index_url}meta-source/",
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert page["files"][0]["requires-python"] == ">=3.10"
    meta = httpx.get(f"{index.url}/files/meta-source/{dist.filename}.metadata")
    assert meta.content == dist.metadata
