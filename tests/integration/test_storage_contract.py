"""The storage contract: every backend, local included, against real servers on loopback.

s3storage runs against Swift's s3api (a real S3 implementation that checks
signatures), swiftstorage against the local Swift with tempauth, and
rackspacestorage against the same Swift behind a Rackspace-style identity endpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from havarti.storage import (
    Digests,
    HashingReader,
    IntegrityError,
    ObjectNotFound,
    Storage,
    storage_key,
)
from havarti.storage.local import LocalStorage
from tests.support.cloud import (
    CLOUD_BACKENDS,
    backend_env,
    empty_and_remove,
    storage_for,
    swift_settings,
)

BACKENDS = ("localstorage", *CLOUD_BACKENDS)
MB = 1 << 20


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Storage, dict[str, str]]]:
    """A ready, empty storage of the parametrised kind and the environment that builds it."""
    name = request.param
    if name == "localstorage":
        env = {"STORAGE": name, "PACKAGE_CACHE": str(tmp_path / "data")}
        storage: Storage = LocalStorage(tmp_path / "data" / "files")
        storage.ensure_ready()
        yield storage, env
        return
    swift = swift_settings()
    identity = request.getfixturevalue("rackspace_identity") if name == "rackspacestorage" else None
    env = backend_env(name, swift, identity)
    storage = storage_for(env)
    assert "created" in (storage.ensure_ready() or "")
    yield storage, env
    empty_and_remove(env)


pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def _key(data: bytes, filename: str) -> str:
    return storage_key(hashlib.sha256(data).hexdigest(), filename)


class FailingStream:
    """Yields ``fail_after`` bytes, then raises as a broken upstream connection would."""

    def __init__(self, fail_after: int) -> None:
        self.left = fail_after

    def read(self, size: int = -1, /) -> bytes:
        if self.left <= 0:
            raise ConnectionResetError("upstream went away")
        step = min(self.left, MB if size < 0 else size)
        self.left -= step
        return b"z" * step


def test_write_read_exists_size_delete(backend):
    storage, _ = backend
    data = os.urandom(300_000)
    key = _key(data, "demo-1.0-py3-none-any.whl")

    assert not storage.exists(key)
    assert storage.write(key, io.BytesIO(data), len(data)) == len(data)
    assert storage.exists(key)
    assert storage.size(key) == len(data)
    assert storage.read_bytes(key) == data

    storage.delete(key)
    assert not storage.exists(key)
    with pytest.raises(ObjectNotFound):
        storage.read_bytes(key)
    with pytest.raises(ObjectNotFound):
        storage.size(key)
    storage.delete(key)  # deleting a missing key is not an error


def test_empty_object(backend):
    storage, _ = backend
    key = _key(b"", "empty.txt")
    assert storage.write(key, io.BytesIO(b"")) == 0
    assert storage.exists(key) and storage.size(key) == 0
    assert storage.read_bytes(key) == b""


_BIG = """
import hashlib, json, resource, sys
from havarti.config import load_settings
from havarti.storage import make_storage
from havarti.storage.local import LocalStorage

env, size = json.loads(sys.argv[1]), int(sys.argv[2])
storage = (LocalStorage(env["ROOT"]) if env["STORAGE"] == "localstorage"
           else make_storage(load_settings(env)))
block = bytes(range(256)) * 4096  # 1 MiB

class Source:
    def __init__(self):
        self.left = size
        self.sha = hashlib.sha256()
    def read(self, n=-1):
        n = min(self.left, 1 << 20 if n is None or n < 0 else n)
        self.left -= n
        data = (block * (n // len(block) + 1))[:n]
        self.sha.update(data)
        return data

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

base = rss()
source = Source()
written = storage.write("big/object.bin", source, size)
after_write = rss()
sha, got = hashlib.sha256(), 0
for chunk in storage.open("big/object.bin"):
    sha.update(chunk)
    got += len(chunk)
print(json.dumps({"written": written, "read": got, "same": sha.hexdigest() == source.sha.hexdigest(),
                  "growth_write": after_write - base, "growth_read": rss() - base}))
"""


def test_200mb_streams_in_and_out_with_bounded_memory(backend, tmp_path):
    storage, env = backend
    size = 200 * 1000 * 1000
    env = {**env, "ROOT": str(getattr(storage, "root", tmp_path))}
    result = subprocess.run([sys.executable, "-c", _BIG, json.dumps(env), str(size)],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    assert figures["written"] == size and figures["read"] == size and figures["same"]
    # Peak RSS growth (after importing the SDKs) far below the object's 200 MB.
    assert figures["growth_write"] < 64 * MB, figures
    assert figures["growth_read"] < 64 * MB, figures
    assert storage.size("big/object.bin") == size


@pytest.mark.parametrize("fail_after", [3 * MB, 20 * MB], ids=["small", "multipart"])
def test_failure_mid_write_leaves_nothing(backend, fail_after):
    storage, _ = backend
    key = "aa/bb/broken-1.0.tar.gz"
    with pytest.raises(ConnectionResetError):
        storage.write(key, FailingStream(fail_after))
    assert not storage.exists(key)
    assert list(storage.list()) == []
    if hasattr(storage, "client"):  # S3: the multipart upload was aborted, not left to bill
        uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket)
        assert uploads.get("Uploads", []) == []


def test_unverified_bytes_are_not_stored(backend):
    storage, _ = backend
    data = os.urandom(2 * MB)
    key = _key(data, "tampered-1.0.tar.gz")
    digests = Digests(expect_sha256=hashlib.sha256(b"something else").hexdigest())
    with pytest.raises(IntegrityError):
        storage.write(key, HashingReader(io.BytesIO(data), digests), len(data))
    assert not storage.exists(key)

    good = Digests(expect_sha256=hashlib.sha256(data).hexdigest(), expect_size=len(data))
    storage.write(key, HashingReader(io.BytesIO(data), good), len(data))
    assert storage.read_bytes(key) == data


def test_two_writers_of_one_key_leave_one_complete_object(backend):
    storage, _ = backend
    key = "cc/dd/raced-1.0-py3-none-any.whl"
    bodies = [b"A" * (12 * MB), b"B" * (12 * MB)]
    errors: list[BaseException] = []

    def write(body: bytes) -> None:
        try:
            storage.write(key, io.BytesIO(body), len(body))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert storage.read_bytes(key) in bodies
    assert [k for k, _ in storage.list()] == [key]


FILENAMES = [
    "Django-4.2.1-py3-none-any.whl",
    "torch-2.1.0+cu121-cp311-cp311-linux_x86_64.whl",
    "pkg-1.0~rc1.tar.gz",
    "bang!name-2.0.zip",
    "UPPER_Case_Project-10.0.0.post1.dev3-py2.py3-none-any.whl",
    "a" * 120 + "-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
]


def test_keys_from_real_filenames(backend):
    storage, _ = backend
    keys = {}
    for index, filename in enumerate(FILENAMES):
        data = f"{index}:{filename}".encode()
        key = _key(data, filename)
        storage.write(key, io.BytesIO(data), len(data))
        keys[key] = data
    assert sorted(storage.list()) == sorted((k, len(v)) for k, v in keys.items())
    for key, data in keys.items():
        assert storage.exists(key)
        assert storage.read_bytes(key) == data
        url = storage.url(key, key.rsplit("/", 1)[1])
        if url is not None:
            assert httpx.get(url).content == data


def test_byte_ranges(backend):
    storage, _ = backend
    data = bytes(range(256)) * 8192  # 2 MiB
    key = _key(data, "ranged-1.0.tar.gz")
    storage.write(key, io.BytesIO(data), len(data))

    def read(start: int, end: int | None) -> bytes:
        return b"".join(storage.open(key, start, end))

    assert read(0, 0) == data[:1]
    assert read(10, 19) == data[10:20]
    assert read(MB - 3, MB + 3) == data[MB - 3:MB + 4]
    assert read(len(data) - 5, None) == data[-5:]
    assert read(len(data) - 1, len(data) - 1) == data[-1:]
    assert read(0, None) == data


def test_listing_with_prefix(backend):
    storage, _ = backend
    written = {}
    for index in range(7):
        data = os.urandom(100 + index)
        key = _key(data, f"p{index}-1.0.tar.gz")
        storage.write(key, io.BytesIO(data), len(data))
        written[key] = len(data)
    assert dict(storage.list()) == written
    first = next(iter(written))
    prefix = first.split("/")[0] + "/"
    assert dict(storage.list(prefix)) == {k: v for k, v in written.items() if k.startswith(prefix)}
    assert list(storage.list("zz-nothing/")) == []


def test_objects_carry_when_they_were_written(backend):
    from datetime import UTC, datetime, timedelta

    storage, _ = backend
    before = datetime.now(UTC) - timedelta(seconds=5)  # clocks of the store and the test differ
    data = os.urandom(321)
    key = _key(data, "dated-1.0.tar.gz")
    storage.write(key, io.BytesIO(data), len(data))
    [item] = list(storage.objects())
    assert (item.key, item.size) == (key, len(data))
    assert item.modified is not None and item.modified.tzinfo is not None
    assert before <= item.modified <= datetime.now(UTC) + timedelta(seconds=5)


def test_redirect_url_works_and_a_tampered_one_is_refused(backend):
    storage, env = backend
    data = os.urandom(5000)
    filename = "signed_pkg-1.0+local-py3-none-any.whl"
    key = _key(data, filename)
    storage.write(key, io.BytesIO(data), len(data))
    url = storage.url(key, filename)
    if env["STORAGE"] == "localstorage":
        # Local files go out through sendfile instead.
        assert url is None and storage.local_path(key) is not None
        return
    assert url is not None
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == data

    signature = "X-Amz-Signature=" if env["STORAGE"] == "s3storage" else "temp_url_sig="
    head, _, tail = url.partition(signature)
    tampered = head + signature + ("0" if tail[0] != "0" else "1") + tail[1:]
    assert httpx.get(tampered).status_code in (401, 403)

    short = storage.url(key, filename, expires=1)
    assert short is not None
    time.sleep(2.1)
    assert httpx.get(short).status_code in (401, 403)
