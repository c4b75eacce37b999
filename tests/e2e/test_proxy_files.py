"""The caching proxy's files through a real Havarti: verification, broken streams, sharing, redirects.

One server and one fake upstream per module; every test uses its own project.
"""

from __future__ import annotations

import hashlib
import threading
import time

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import cloud, dists
from tests.support.clients import installed_version
from tests.support.proxy import (
    UPSTREAM_TIMEOUT,
    break_upstream,
    file_url,
    module_fixtures,
    page_files,
    running,
    stored_objects,
    stored_rows,
    wait_stored,
)
from tests.support.server import HavartiServer
from tests.support.uploads import post_upload

upstream, server, upstream_restored = module_fixtures()


def assert_not_stored(server: HavartiServer, filename: str) -> None:
    assert stored_rows(server, filename) == 0
    assert stored_objects(server, filename) == []


def test_corrupt_upstream_file_fails_installs_and_is_never_stored(server, upstream, clients):
    wheel = dists.wheel("tampered", "1.0")
    upstream.publish("tampered", wheel, "1.0")
    upstream.corrupt(wheel.filename)

    # Without the clients' own retries (each a fresh download, failing the same way).
    result, target = clients.pip_install(server.index_url, "tampered", extra=["--retries", "0"])
    assert result.returncode != 0
    assert installed_version(target, "tampered") is None
    result, target = clients.uv_install(server.index_url, "tampered", env={"UV_HTTP_RETRIES": "0"})
    assert result.returncode != 0
    assert installed_version(target, "tampered") is None
    assert_not_stored(server, wheel.filename)
    log = server.log()
    assert f"fetch-failed project=tampered file={wheel.filename}" in log
    assert "does not match" in log
    assert "Traceback" not in log

    upstream.fix(wheel.filename)
    result, target = clients.uv_install(server.index_url, "tampered")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "tampered") == "1.0"
    assert wait_stored(server, wheel.filename) == 1
    assert [p.read_bytes() for p in stored_objects(server, wheel.filename)] == [wheel.data]


@pytest.mark.parametrize("fault", ["broken", "corrupt"])
def test_upstream_fault_mid_file_cuts_the_client_short(server, upstream, fault):
    project = f"half-{fault}"
    wheel = dists.wheel(project, "1.0", payload_size=2 * 2**20)
    upstream.publish(project, wheel, "1.0")
    if fault == "broken":
        upstream.break_stream(wheel.filename)
    else:
        upstream.corrupt(wheel.filename)
    page_files(server, project)

    started = time.monotonic()
    try:
        # The status came before the fault; the body stops short of its Content-Length.
        response = httpx.get(file_url(server, project, wheel.filename), timeout=30)
    except httpx.RemoteProtocolError:
        pass
    else:
        # Or the whole download failed before this client's response began (a busy machine
        # lets the upstream finish first): then it gets a 5xx, never the bad bytes.
        assert response.status_code >= 500, response.status_code
    # Cut short at once, not after a keep-alive timeout.
    assert time.monotonic() - started < 3
    assert_not_stored(server, wheel.filename)
    assert f"fetch-failed project={project} file={wheel.filename}" in server.log()

    upstream.fix(wheel.filename)
    response = httpx.get(file_url(server, project, wheel.filename))
    assert response.status_code == 200
    assert response.content == wheel.data
    assert wait_stored(server, wheel.filename) == 1


@pytest.mark.parametrize(("outage", "status"), [("refused", 502), ("hang", 504), ("error", 502)])
def test_upstream_failing_on_an_uncached_file_is_a_5xx(server, upstream, outage, status):
    project = f"file-{outage}"
    wheel = dists.wheel(project, "1.0")
    upstream.publish(project, wheel, "1.0")
    page_files(server, project)
    break_upstream(upstream, outage)

    started = time.monotonic()
    response = httpx.get(file_url(server, project, wheel.filename), timeout=30)
    assert response.status_code == status
    assert response.text.count("\n") == 1 and "upstream" in response.text
    assert time.monotonic() - started < UPSTREAM_TIMEOUT + 1.5
    assert_not_stored(server, wheel.filename)


def test_sixteen_clients_of_one_uncached_file_share_one_download(server, upstream):
    wheel = dists.wheel("crowded", "1.0", payload_size=5 * 2**20)
    upstream.publish("crowded", wheel, "1.0")
    page_files(server, "crowded")
    # About 2 s upstream: every client arrives while the download is in flight.
    upstream.file_delay = 0.025

    bodies: list[bytes] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def download() -> None:
        try:
            barrier.wait()
            response = httpx.get(file_url(server, "crowded", wheel.filename), timeout=60)
            response.raise_for_status()
            bodies.append(response.content)
        except BaseException as exc:  # collected: the assertion below shows them
            errors.append(exc)

    threads = [threading.Thread(target=download) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(bodies) == 16
    assert {hashlib.sha256(body).hexdigest() for body in bodies} == {wheel.sha256}
    assert upstream.fetch_count(wheel.filename) <= 2
    assert wait_stored(server, wheel.filename) == 1


def test_metadata_files_are_proxied_verified_and_kept(server, upstream):
    good, bad = dists.wheel("meta-proj", "1.0"), dists.wheel("meta-proj", "2.0")
    upstream.publish("meta-proj", good, "1.0")
    upstream.publish("meta-proj", bad, "2.0")
    upstream.corrupt(bad.filename, metadata=True)
    files = page_files(server, "meta-proj")
    assert files[good.filename]["core-metadata"] == {"sha256": hashlib.sha256(good.metadata).hexdigest()}

    response = httpx.get(file_url(server, "meta-proj", good.filename + ".metadata"))
    assert response.status_code == 200
    assert response.content == good.metadata
    refused = httpx.get(file_url(server, "meta-proj", bad.filename + ".metadata"))
    assert refused.status_code == 502
    assert "does not match" in refused.text
    assert stored_objects(server, bad.filename + ".metadata") == []

    upstream.down()
    for _ in range(2):  # both web workers
        response = httpx.get(file_url(server, "meta-proj", good.filename + ".metadata"))
        assert response.status_code == 200
        assert response.content == good.metadata
    assert upstream.metadata_count(good.filename) == 1


def test_redirect_mode_sends_clients_upstream_and_caches_in_the_background(upstream, tmp_path, clients):
    wheel = dists.wheel("redirected", "1.0")
    upstream.publish("redirected", wheel, "1.0")
    with running(tmp_path / "data", {"FALLBACK": upstream.url, "FILE_MISS": "redirect",
                                     "UPSTREAM_TIMEOUT": str(UPSTREAM_TIMEOUT)}) as server:
        page_files(server, "redirected")
        url = file_url(server, "redirected", wheel.filename)
        response = httpx.get(url)
        assert response.status_code == 302
        assert response.headers["Location"] == f"{upstream.url[:-len('simple/')]}files/redirected/{wheel.filename}"

        deadline = time.monotonic() + 15
        while stored_rows(server, wheel.filename) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stored_rows(server, wheel.filename) == 1
        assert upstream.fetch_count(wheel.filename) == 1

        upstream.down()
        for _ in range(2):  # both web workers
            response = httpx.get(url)
            assert response.status_code == 200
            assert response.headers["X-Havarti-Cache"] == "hit"
            assert response.content == wheel.data
        result, target = clients.uv_install(server.index_url, "redirected")
        assert result.returncode == 0, result.stderr
        assert installed_version(target, "redirected") == "1.0"


def test_head_is_answered_by_havarti_and_ranges_work_at_the_object_store(upstream, tmp_path):
    """HEAD of a stored file comes from Havarti's own records, never a redirect: a presigned
    or temp URL is signed for GET, and the object store refuses a HEAD with it. A GET is
    still redirected on a cloud backend, and a Range sent along works at the object store."""
    data_dir = tmp_path / "data"
    # The backend under test (HAVARTI_TEST_STORAGE) with its redirects on, as deployed.
    storage = cloud.test_storage_env(data_dir, redirect=True)
    redirects = bool(storage)
    public = dists.wheel("head-public", "1.0", payload_size=100_000)
    upstream.publish("head-public", public, "1.0")
    private = dists.wheel("head-private", "1.0", payload_size=100_000)
    with running(data_dir, {"PASSCODE": PASSCODE, "FALLBACK": upstream.url,
                            "UPSTREAM_TIMEOUT": str(UPSTREAM_TIMEOUT), **storage}) as server:
        assert post_upload(server.url, private, PASSCODE).status_code == 200
        page_files(server, "head-public")
        miss = httpx.get(file_url(server, "head-public", public.filename), timeout=30)
        assert miss.status_code == 200 and miss.content == public.data
        assert wait_stored(server, public.filename) == 1
        upstream.down()  # what follows needs Havarti and its storage only

        for project, dist in (("head-public", public), ("head-private", private)):
            url = file_url(server, project, dist.filename)
            head = httpx.head(url)
            assert head.status_code == 200, head.headers
            assert "Location" not in head.headers
            assert head.headers["Content-Length"] == str(len(dist.data))
            assert head.headers["ETag"] == f'"{dist.sha256}"'
            assert head.headers["Accept-Ranges"] == "bytes"
            assert head.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert head.headers["Content-Type"] == "application/zip"
            assert head.content == b""
            assert httpx.head(url, headers={"If-None-Match": head.headers["ETag"]}).status_code == 304
            ranged = httpx.head(url, headers={"Range": "bytes=0-9"})
            assert ranged.status_code == 206
            assert ranged.headers["Content-Range"] == f"bytes 0-9/{len(dist.data)}"

            wanted = {"Range": "bytes=1000-1999"}
            response = httpx.get(url, headers=wanted)
            if redirects:
                assert response.status_code == 302, response.text
                response = httpx.get(response.headers["Location"], headers=wanted)
            assert response.status_code == 206
            assert response.content == dist.data[1000:2000]
            whole = httpx.get(url, follow_redirects=True)
            assert whole.status_code == 200 and whole.content == dist.data
