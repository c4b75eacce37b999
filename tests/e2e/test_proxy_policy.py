"""What the proxy offers: private projects shadow upstream (unless merged), and the cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.clients import Clients, installed_version
from tests.support.proxy import (
    STALE_HEADER,
    UPSTREAM_TIMEOUT,
    file_url,
    get_page,
    module_fixtures,
    page_files,
    running,
)
from tests.support.server import HavartiServer

upstream, server, upstream_restored = module_fixtures({"UPSTREAM_MERGE": "merged,merged-only"})


def upload(clients: Clients, server: HavartiServer, dist: dists.Dist) -> None:
    result = clients.twine_upload(server.url, PASSCODE, dist.write(clients.work / "uploads"))
    assert result.returncode == 0, result.stderr + result.stdout


def test_private_project_shadows_upstream(server, upstream, clients):
    public = [dists.wheel("shadowed", "1.0"), dists.wheel("shadowed", "9.0")]
    for dist, version in zip(public, ["1.0", "9.0"], strict=True):
        upstream.publish("shadowed", dist, version)
    private = dists.wheel("shadowed", "0.5")
    upload(clients, server, private)
    # The first upload asks upstream once, to warn that it shadows it; nothing after that does.
    assert upstream.page_count("shadowed") == 1

    assert set(page_files(server, "shadowed")) == {private.filename}
    for dist in public:
        response = httpx.get(file_url(server, "shadowed", dist.filename))
        assert response.status_code == 404
        assert httpx.get(file_url(server, "shadowed", dist.filename + ".metadata")).status_code == 404
    result, target = clients.uv_install(server.index_url, "shadowed")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "shadowed") == "0.5"
    assert sum(upstream.fetch_count(d.filename) for d in public) == 0
    assert upstream.page_count("shadowed") == 1


def test_cached_upstream_files_are_shadowed_once_the_project_is_private(server, upstream, clients):
    public = dists.wheel("taken-over", "1.0")
    upstream.publish("taken-over", public, "1.0")
    result, _ = clients.uv_install(server.index_url, "taken-over")
    assert result.returncode == 0, result.stderr

    private = dists.wheel("taken-over", "0.1")
    upload(clients, server, private)
    assert set(page_files(server, "taken-over")) == {private.filename}
    assert httpx.get(file_url(server, "taken-over", public.filename)).status_code == 404


def test_upstream_merge_offers_both(server, upstream, clients):
    public = dists.wheel("merged", "2.0")
    upstream.publish("merged", public, "2.0")
    private = dists.wheel("merged", "1.0")
    upload(clients, server, private)

    files = page_files(server, "merged")
    assert set(files) == {private.filename, public.filename}
    result, target = clients.pip_install(server.index_url, "merged")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "merged") == "2.0"


def test_upstream_404_with_private_files_serves_the_private_page(server, upstream, clients):
    private = dists.wheel("merged-only", "1.0")
    upload(clients, server, private)

    response = get_page(server, "merged-only")
    assert response.status_code == 200
    assert STALE_HEADER not in response.headers
    assert [f["filename"] for f in response.json()["files"]] == [private.filename]
    assert upstream.page_count("merged-only") == 1
    document = httpx.get(f"{server.url}/pypi/merged-only/json").json()
    assert [f["url"] for f in document["urls"]] == [file_url(server, "merged-only", private.filename)]


def test_private_page_needs_no_upstream(server, upstream, clients):
    private = dists.wheel("private-offline", "1.0")
    upload(clients, server, private)
    upstream.down()

    response = get_page(server, "private-offline")
    assert response.status_code == 200
    assert STALE_HEADER not in response.headers
    assert [f["filename"] for f in response.json()["files"]] == [private.filename]


def test_cooldown_hides_recent_upstream_files(upstream, clients, tmp_path):
    now = datetime.now(UTC)
    for project in ("cooling", "exempted"):
        upstream.publish(project, dists.wheel(project, "1.0"), "1.0", upload_time=now - timedelta(days=10))
        upstream.publish(project, dists.wheel(project, "2.0"), "2.0", upload_time=now - timedelta(hours=1))
    young = dists.wheel("cooling", "2.0")
    env = {"PASSCODE": PASSCODE, "FALLBACK": upstream.url, "COOLDOWN": "3d",
           "COOLDOWN_EXEMPT": "exempted", "UPSTREAM_TIMEOUT": str(UPSTREAM_TIMEOUT)}
    with running(tmp_path / "data", env) as server:
        assert set(page_files(server, "cooling")) == {dists.wheel("cooling", "1.0").filename}
        assert httpx.get(file_url(server, "cooling", young.filename)).status_code == 404
        document = httpx.get(f"{server.url}/pypi/cooling/json").json()
        assert {f["filename"] for files in document["releases"].values() for f in files} == {
            dists.wheel("cooling", "1.0").filename}
        result, target = clients.uv_install(server.index_url, "cooling")
        assert result.returncode == 0, result.stderr
        assert installed_version(target, "cooling") == "1.0"

        assert len(page_files(server, "exempted")) == 2
        result, target = clients.uv_install(server.index_url, "exempted")
        assert installed_version(target, "exempted") == "2.0"

        private = dists.wheel("fresh-private", "1.0")
        upload(clients, server, private)
        assert set(page_files(server, "fresh-private")) == {private.filename}
