"""Storage configuration errors, `havarti check`, start-up, and `havarti storage copy`,
run as a user runs them: the real CLI in a subprocess, against the local Swift.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from havarti.storage import storage_key
from havarti.storage.local import LocalStorage
from tests.support.cloud import (
    backend_env,
    empty_and_remove,
    storage_for,
    swift_settings,
)
from tests.support.fakeindex import FakeIndex
from tests.support.server import clean_env


def havarti(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "havarti.cli", *args], env=clean_env(env),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def base(tmp_path: Path, upstream: FakeIndex) -> dict[str, str]:
    """What every run needs besides storage: its own data dir, the fake upstream."""
    return {"PACKAGE_CACHE": str(tmp_path / "data"), "FALLBACK": upstream.url}


@pytest.mark.parametrize(("backend", "missing"), [
    ("s3storage", "S3_BUCKET"), ("s3storage", "S3_SECRET_KEY"),
    ("swiftstorage", "SWIFT_AUTH_URL"), ("rackspacestorage", "RACKSPACE_KEY"),
])
def test_missing_credentials_stop_with_the_variable_name(base, rackspace_identity, backend, missing):
    env = backend_env(backend, swift_settings(), rackspace_identity)
    del env[missing]
    for command in (["check"], ["serve"]):
        result = havarti(command, {**base, **env})
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0
        assert missing in result.stderr and backend in result.stderr


def _storage_line(result: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in result.stdout.splitlines() if " storage: " in line)


@pytest.mark.parametrize(("backend", "change", "words"), [
    ("s3storage", {"S3_SECRET_KEY": "wrong"}, ["refused the credentials", "S3_SECRET_KEY"]),
    ("swiftstorage", {"SWIFT_KEY": "wrong"}, ["refused the login", "SWIFT_KEY"]),
    ("rackspacestorage", {"RACKSPACE_KEY": "wrong"}, ["refused", "RACKSPACE_KEY"]),
    ("rackspacestorage", {"RACKSPACE_REGION": "SYD"}, ["no region", "SYD", "DFW, ORD"]),
])
def test_wrong_credentials_fail_check_and_start_up(base, rackspace_identity, backend, change, words):
    env = {**base, **backend_env(backend, swift_settings(), rackspace_identity), **change}
    result = havarti(["check"], env)
    assert result.returncode == 1
    line = _storage_line(result)
    assert line.startswith("FAIL")
    for word in words:
        assert word in line, line
    started = havarti(["serve", "--port", "1"], env)  # stops before binding anything
    assert started.returncode == 2
    assert started.stderr.startswith("havarti: storage:") and words[0] in started.stderr


@pytest.mark.parametrize("backend", ["s3storage", "swiftstorage", "rackspacestorage"])
def test_check_reports_a_missing_bucket_then_passes_once_created(base, rackspace_identity, backend):
    env = {**base, **backend_env(backend, swift_settings(), rackspace_identity)}
    result = havarti(["check"], env)
    assert result.returncode == 1
    assert "does not exist" in _storage_line(result)
    storage = storage_for(env)
    assert "created" in (storage.ensure_ready() or "")
    try:
        result = havarti(["check"], env)
        assert result.returncode == 0, result.stdout
        assert _storage_line(result).startswith("ok")
    finally:
        empty_and_remove(env)


# havarti storage copy


def _objects(root: Path, count: int) -> dict[str, bytes]:
    local = LocalStorage(root)
    written = {}
    for index in range(count):
        data = f"object {index} ".encode() * (index * 5000 + 1)
        key = storage_key(hashlib.sha256(data).hexdigest(), f"pkg{index}-1.0.tar.gz")
        local.write(key, io.BytesIO(data))
        written[key] = data
    return written


@pytest.fixture
def s3_target() -> Iterator[dict[str, str]]:
    env = backend_env("s3storage", swift_settings())
    yield env
    try:
        empty_and_remove(env)
    except Exception:  # noqa: BLE001
        pass


def test_storage_copy_verifies_each_object_and_resumes(base, s3_target):
    written = _objects(Path(base["PACKAGE_CACHE"]) / "files", 4)
    # One object whose bytes no longer match the sha256 in its key.
    bad = storage_key(hashlib.sha256(b"original").hexdigest(), "bad-1.0.tar.gz")
    LocalStorage(Path(base["PACKAGE_CACHE"]) / "files").write(bad, io.BytesIO(b"flipped!"))
    to = [arg for k, v in s3_target.items() for arg in ("--to", f"{k}={v}")]

    result = havarti(["storage", "copy", *to], base)
    assert result.returncode == 1
    assert f"FAIL {bad}" in result.stderr and "does not match" in result.stderr
    assert "copied 4 objects" in result.stdout and "failed 1" in result.stdout
    target = storage_for(s3_target)
    assert {k: target.read_bytes(k) for k, _ in target.list()} == written

    # Interrupted half-way, as far as the target knows: a rerun copies only what is missing.
    target.delete(next(iter(written)))
    (Path(base["PACKAGE_CACHE"]) / "files" / bad).unlink()
    result = havarti(["storage", "copy", *to], base)
    assert result.returncode == 0, result.stderr
    assert "copied 1 objects" in result.stdout and "skipped 3" in result.stdout
    assert {k: target.read_bytes(k) for k, _ in target.list()} == written


def test_storage_copy_from_an_env_file(base, s3_target, tmp_path):
    written = _objects(Path(base["PACKAGE_CACHE"]) / "files", 2)
    env_file = tmp_path / "target.env"
    env_file.write_text("# the new home\n" + "".join(f"{k}={v}\n" for k, v in s3_target.items()))
    result = havarti(["storage", "copy", "--env-file", str(env_file)], base)
    assert result.returncode == 0, result.stderr
    target = storage_for(s3_target)
    assert {k: target.read_bytes(k) for k, _ in target.list()} == written


@pytest.mark.parametrize(("args", "words"), [
    (["--to", "STORAGE"], ["expected KEY=VALUE"]),
    ([], ["no target"]),
    (["--to", "STORAGE=s3storage", "--to", "S3_BUCKET=x"], ["S3_ACCESS_KEY"]),
    (["--to", "STORAGE=localstorage"], ["the target is the source"]),
])
def test_storage_copy_refusals(base, args, words):
    result = havarti(["storage", "copy", *args], base)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    for word in words:
        assert word in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("keystoneclient") is not None,
                    reason="python-keystoneclient is installed here")
def test_keystone_login_without_its_library_says_what_to_install(base):
    env = {**base, **backend_env("swiftstorage", swift_settings()),
           "SWIFT_AUTH_VERSION": "3", "SWIFT_PROJECT": "demo"}
    result = havarti(["check"], env)
    assert result.returncode == 1
    line = _storage_line(result)
    assert line.startswith("FAIL") and "havarti[keystone]" in line
