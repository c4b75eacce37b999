"""Reserved names and package policies end to end: the real server (two web workers),
real pip, uv and twine, and the fake upstream's request log as the witness."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.clients import installed_version
from tests.support.fakeindex import FakeIndex, running_index
from tests.support.server import HavartiServer

#: A policy change reaches the other web workers within POLICY_REFRESH (2 s).
SETTLE = 10.0


@pytest.fixture(scope="module")
def upstream_index() -> Iterator[FakeIndex]:
    with running_index() as fake:
        yield fake


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory,
          upstream_index: FakeIndex) -> Iterator[HavartiServer]:
    server = HavartiServer(tmp_path_factory.mktemp("policies") / "data", {
        "PASSCODE": PASSCODE, "FALLBACK": upstream_index.url, "UPSTREAM_TIMEOUT": "3",
        "RESERVED_NAMES": "acme-*"})
    server.start()
    yield server
    server.stop()


def eventually(check, what: str) -> None:
    deadline = time.monotonic() + SETTLE
    while not check():
        assert time.monotonic() < deadline, f"not within {SETTLE}s: {what}"
        time.sleep(0.2)


def test_a_reserved_name_is_never_requested_upstream(index, upstream_index, clients, tmp_path):
    # Someone publishes our private name upstream, with a higher version.
    upstream_index.publish("acme-secret", dists.wheel("acme-secret", "99.0"), "99.0")
    result, _ = clients.pip_install(index.index_url, "acme-secret")
    assert result.returncode != 0
    result, _ = clients.uv_install(index.index_url, "acme-secret")
    assert result.returncode != 0

    token = httpx.post(f"{index.url}/api/tokens", json={"scope": "upload", "projects": ["acme-*"]},
                       auth=("admin", PASSCODE)).json()["token"]
    ours = dists.wheel("acme-secret", "1.0")
    published = clients.twine_upload(index.url + "/", token, ours.write(tmp_path))
    assert published.returncode == 0, published.stdout + published.stderr
    for install in (clients.pip_install, clients.uv_install):
        result, target = install(index.index_url, "acme-secret")
        assert result.returncode == 0, result.stderr
        assert installed_version(target, "acme_secret") == "1.0"
    assert [path for path in upstream_index.requests if "acme" in path] == []


def test_an_upload_token_without_the_prefix_cannot_upload_into_it(index, clients, tmp_path):
    token = httpx.post(f"{index.url}/api/tokens", json={"scope": "upload"},
                       auth=("admin", PASSCODE)).json()["token"]
    result = clients.uv_publish(index.url + "/", token,
                                dists.wheel("acme-other", "1.0").write(tmp_path))
    assert result.returncode != 0
    assert "reserved (acme-*)" in " ".join((result.stdout + result.stderr).split())


def test_a_denied_cached_file_answers_403(index, upstream_index, clients):
    old, new = dists.wheel("leftpad", "1.0"), dists.wheel("leftpad", "2.0")
    upstream_index.publish("leftpad", old, "1.0")
    upstream_index.publish("leftpad", new, "2.0")
    result, _ = clients.pip_install(index.index_url, "leftpad==1.0")
    assert result.returncode == 0, result.stderr
    url = f"{index.url}/files/leftpad/{old.filename}"
    eventually(lambda: httpx.get(url).headers.get("X-Havarti-Cache") == "hit", "1.0 cached")

    rule = httpx.post(f"{index.url}/api/policies", auth=("admin", PASSCODE), json={
        "action": "deny", "match": "leftpad<2", "reason": "CVE-2026-0001"})
    assert rule.status_code == 201, rule.text
    eventually(lambda: all(httpx.get(url).status_code == 403 for _ in range(4)),
               "every worker refuses the cached file")
    refused = httpx.get(url)
    assert "CVE-2026-0001" in refused.text
    # Other web processes read the rules anew within POLICY_REFRESH (2 s): the page follows.
    page_url = f"{index.index_url}leftpad/"
    eventually(lambda: all(old.filename not in httpx.get(page_url).text for _ in range(4)),
               "every worker leaves the denied file off the page")
    assert new.filename in httpx.get(page_url).text
    result, _ = clients.pip_install(index.index_url, "leftpad==1.0")
    assert result.returncode != 0
    result, target = clients.uv_install(index.index_url, "leftpad")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "leftpad") == "2.0"
    assert "access-refused status=403" in index.log()
