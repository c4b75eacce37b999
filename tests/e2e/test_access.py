"""Who may do what, end to end with real clients: tokens for pip, uv, twine and uv publish.

The server reads with READ_AUTH on, so every install below proves the read
token was sent and accepted; without credentials the same install fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.clients import installed_version
from tests.support.fakeindex import FakeIndex, running_index
from tests.support.server import HavartiServer


@pytest.fixture(scope="module")
def upstream_index() -> Iterator[FakeIndex]:
    with running_index() as fake:
        yield fake


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory,
          upstream_index: FakeIndex) -> Iterator[HavartiServer]:
    server = HavartiServer(tmp_path_factory.mktemp("access") / "data", {
        "PASSCODE": PASSCODE, "READ_AUTH": "true", "FALLBACK": upstream_index.url,
        "UPSTREAM_TIMEOUT": "3"})
    server.start()
    yield server
    server.stop()


def make_token(server: HavartiServer, **body: object) -> str:
    response = httpx.post(f"{server.url}/api/tokens", json=body, auth=("admin", PASSCODE))
    assert response.status_code == 201, response.text
    return response.json()["token"]


def with_credentials(server: HavartiServer, secret: str) -> str:
    return f"http://ci:{secret}@127.0.0.1:{server.port}/simple/"


def publish(clients, server: HavartiServer, tmp_path: Path, project: str) -> dists.Dist:
    wheel = dists.wheel(project, "1.0.0")
    result = clients.twine_upload(server.url + "/", PASSCODE, wheel.write(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    return wheel


def test_pip_and_uv_install_with_a_read_token_in_the_url(index, clients, tmp_path):
    publish(clients, index, tmp_path, "reader-url")
    secret = make_token(index, scope="read", note="ci")
    refused, _ = clients.pip_install(index.index_url, "reader-url")
    assert refused.returncode != 0
    for install in (clients.pip_install, clients.uv_install):
        result, target = install(with_credentials(index, secret), "reader-url")
        assert result.returncode == 0, result.stdout + result.stderr
        assert installed_version(target, "reader_url") == "1.0.0"


def test_pip_and_uv_install_with_a_read_token_in_netrc(index, clients, tmp_path):
    publish(clients, index, tmp_path, "reader-netrc")
    secret = make_token(index, scope="read")
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin ci\npassword {secret}\n")
    netrc.chmod(0o600)
    env = {"NETRC": str(netrc), "HOME": str(tmp_path)}
    for install in (clients.pip_install, clients.uv_install):
        result, target = install(index.index_url, "reader-netrc", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert installed_version(target, "reader_netrc") == "1.0.0"


@pytest.mark.parametrize("tool", ["twine", "uv"])
def test_upload_token_publishes_only_to_its_projects(index, clients, tmp_path, tool):
    secret = make_token(index, scope="upload", projects=["acme-*"], note="release")
    upload = clients.twine_upload if tool == "twine" else clients.uv_publish
    ours = dists.wheel(f"acme-{tool}", "1.0")
    result = upload(index.url + "/", secret, ours.write(tmp_path / "ours"))
    assert result.returncode == 0, result.stdout + result.stderr
    listed = httpx.get(f"{index.index_url}acme-{tool}/", auth=("ci", secret),
                       headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert [f["filename"] for f in listed.json()["files"]] == [ours.filename]

    theirs = dists.wheel(f"other-{tool}", "1.0")
    result = upload(index.url + "/", secret, theirs.write(tmp_path / "theirs"))
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    assert "403" in output and "may not upload to" in output, output
    page = httpx.get(f"{index.index_url}other-{tool}/", auth=("ci", PASSCODE))
    assert page.status_code != 200 or theirs.filename not in page.text


def test_read_token_cannot_publish(index, clients, tmp_path):
    secret = make_token(index, scope="read")
    result = clients.twine_upload(index.url + "/", secret,
                                  dists.wheel("acme-readonly", "1.0").write(tmp_path))
    assert result.returncode != 0
    assert "may not upload" in " ".join((result.stdout + result.stderr).split())


def test_expired_token_is_refused(index, clients, tmp_path):
    publish(clients, index, tmp_path, "reader-expired")
    made = time.monotonic()
    secret = make_token(index, scope="read", expires="20s")
    result, _ = clients.pip_install(with_credentials(index, secret), "reader-expired")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - made < 20, "the machine is too slow for this test's expiry"
    time.sleep(max(0.0, 20.5 - (time.monotonic() - made)))
    refused = httpx.get(index.index_url, auth=("ci", secret))
    assert refused.status_code == 401 and "expired" in refused.text
    result, _ = clients.pip_install(with_credentials(index, secret), "reader-expired")
    assert result.returncode != 0
    assert "access-refused status=401" in index.log()


def test_a_deleted_filename_cannot_come_back_with_other_bytes(index, clients, tmp_path):
    first = publish(clients, index, tmp_path / "first", "reborn")
    deleted = httpx.delete(f"{index.url}/api/projects/reborn/files/{first.filename}",
                           auth=("admin", PASSCODE))
    assert deleted.status_code == 200, deleted.text
    other = dists.wheel("reborn", "1.0.0", payload_size=100)
    assert other.filename == first.filename and other.sha256 != first.sha256
    result = clients.twine_upload(index.url + "/", PASSCODE, other.write(tmp_path / "other"))
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    assert "409" in output and "filename was used before" in output, output
    page = httpx.get(f"{index.index_url}reborn/", auth=("ci", PASSCODE))
    assert first.filename not in page.text
