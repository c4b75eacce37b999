"""A hostile upstream through a real Havarti: file URLs and redirects that aim inside,
entries naming other projects, files that dribble or never end.

One server per module, with a second fake index as an allowed file host
(UPSTREAM_FILE_HOSTS) and a third as the "internal service" nothing may reach.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.fakeindex import FakeIndex, running_index
from tests.support.proxy import (
    file_url,
    page_files,
    restore,
    running,
    stored_objects,
    stored_rows,
    wait_stored,
)
from tests.support.server import HavartiServer

#: Small: a dribbling file must fail within seconds.
TIMEOUT = 2.0
MIN_RATE = 1_000_000
MAX_FILE_SIZE = 1_500_000


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeIndex]:
    with running_index() as fake:
        yield fake


@pytest.fixture(scope="module")
def files_host() -> Iterator[FakeIndex]:
    """Where the upstream keeps (some of) its files: allowed by UPSTREAM_FILE_HOSTS."""
    with running_index() as fake:
        yield fake


@pytest.fixture(scope="module")
def internal() -> Iterator[FakeIndex]:
    """An internal service on the same host, at another port: never to be reached."""
    with running_index() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(upstream: FakeIndex, files_host: FakeIndex, internal: FakeIndex,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[HavartiServer]:
    env = {"PASSCODE": PASSCODE, "FALLBACK": upstream.url, "UPSTREAM_TIMEOUT": str(TIMEOUT),
           "UPSTREAM_FILE_HOSTS": f"127.0.0.1:{files_host.port}",
           "UPSTREAM_MIN_RATE": str(MIN_RATE), "MAX_FILE_SIZE": str(MAX_FILE_SIZE)}
    with running(tmp_path_factory.mktemp("hostile") / "data", env) as started:
        yield started


@pytest.fixture(autouse=True)
def upstream_restored(upstream: FakeIndex, internal: FakeIndex) -> Iterator[None]:
    yield
    restore(upstream)
    reached, internal.requests[:] = list(internal.requests), []
    assert reached == [], "the internal service was reached"


def assert_refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 502, response.text
    assert response.text.count("\n") == 1
    for word in ("refused", *words):
        assert word in response.text


def test_entries_pointing_inside_are_refused_for_files_and_metadata(server, upstream, internal):
    wheel = dists.wheel("ssrf-entry", "1.0")
    # The probe: `.metadata` appended to this made the query `x=.metadata` at the internal port.
    upstream.publish("ssrf-entry", wheel, "1.0").url = f"http://127.0.0.1:{internal.port}/admin?x="
    assert wheel.filename in page_files(server, "ssrf-entry")

    meta = httpx.get(file_url(server, "ssrf-entry", wheel.filename + ".metadata"))
    assert_refused(meta, f"127.0.0.1:{internal.port}", "UPSTREAM_FILE_HOSTS")
    response = httpx.get(file_url(server, "ssrf-entry", wheel.filename))
    assert_refused(response, f"127.0.0.1:{internal.port}")
    assert stored_rows(server, wheel.filename) == 0
    assert "upstream-url-refused" in server.log()
    assert "Traceback" not in server.log()


def test_every_redirect_hop_is_checked(server, upstream, files_host, internal):
    inward, outward, looping = (dists.wheel(f"redirected-{n}", "1.0")
                                for n in ("inward", "outward", "looping"))
    upstream.publish("redirected-inward", inward, "1.0").redirect = \
        f"http://127.0.0.1:{internal.port}/files/x/{inward.filename}"
    files_host.publish("redirected-outward", outward, "1.0")
    upstream.publish("redirected-outward", outward, "1.0").redirect = \
        files_host.file_url("redirected-outward", outward.filename)
    loop = upstream.publish("redirected-looping", looping, "1.0")
    loop.redirect = upstream.file_url("redirected-looping", looping.filename)

    assert_refused(httpx.get(file_url(server, "redirected-inward", inward.filename)),
                   f"127.0.0.1:{internal.port}")
    response = httpx.get(file_url(server, "redirected-outward", outward.filename))
    assert response.status_code == 200
    assert response.content == outward.data
    assert files_host.fetch_count(outward.filename) == 1
    assert_refused(httpx.get(file_url(server, "redirected-looping", looping.filename)),
                   "redirects")
    assert upstream.fetch_count(looping.filename) == 6


def test_files_on_an_allowed_file_host_are_fetched(server, upstream, files_host):
    wheel = dists.wheel("hosted-elsewhere", "1.0")
    files_host.publish("hosted-elsewhere", wheel, "1.0")
    upstream.publish("hosted-elsewhere", wheel, "1.0").url = \
        files_host.file_url("hosted-elsewhere", wheel.filename)
    page_files(server, "hosted-elsewhere")
    response = httpx.get(file_url(server, "hosted-elsewhere", wheel.filename + ".metadata"))
    assert response.status_code == 200 and response.content == wheel.metadata
    response = httpx.get(file_url(server, "hosted-elsewhere", wheel.filename))
    assert response.status_code == 200 and response.content == wheel.data
    assert upstream.fetch_count(wheel.filename) == 0


def test_the_metadata_url_is_the_file_path_plus_metadata_keeping_the_query(server, upstream):
    wheel = dists.wheel("signed-urls", "1.0")
    upstream.publish("signed-urls", wheel, "1.0").query = "token=abc"
    page_files(server, "signed-urls")
    response = httpx.get(file_url(server, "signed-urls", wheel.filename + ".metadata"))
    assert response.status_code == 200, response.text
    assert response.content == wheel.metadata
    assert f"/files/signed-urls/{wheel.filename}.metadata?token=abc" in upstream.requests


def test_an_entry_naming_another_project_is_dropped_and_never_served(server, upstream):
    victim = dists.wheel("victim", "1.0")
    upstream.publish("victim", victim, "1.0")
    # evilproj lists victim's filename, with other bytes and their hash.
    evil = dists.Dist(victim.filename, dists.wheel("victim", "1.0", payload_size=1000).data,
                      victim.metadata)
    upstream.publish("evilproj", dists.wheel("evilproj", "1.0"), "1.0")
    upstream.publish("evilproj", evil, "1.0")

    files = page_files(server, "evilproj")
    assert victim.filename not in files and len(files) == 1
    assert "upstream-files-dropped project=evilproj count=1" in server.log()
    assert httpx.get(file_url(server, "evilproj", victim.filename)).status_code == 404
    response = httpx.get(file_url(server, "victim", victim.filename))
    assert response.status_code == 200 and response.content == victim.data
    assert response.headers["ETag"] == f'"{victim.sha256}"'
    assert wait_stored(server, victim.filename) == 1


def test_a_dribbling_file_is_cut_off_at_the_minimum_rate(server, upstream):
    wheel = dists.wheel("dribbler", "1.0", payload_size=1_200_000)
    upstream.publish("dribbler", wheel, "1.0")
    page_files(server, "dribbler")
    upstream.file_delay = 0.3  # 64 KiB every 0.3 s: ~210 kB/s, a fifth of UPSTREAM_MIN_RATE

    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(file_url(server, "dribbler", wheel.filename), timeout=30)
    # One UPSTREAM_TIMEOUT window (and the chunk that ends it), not the ~6 s the file would take.
    assert time.monotonic() - started < 2 * TIMEOUT + 1
    assert stored_rows(server, wheel.filename) == 0 and stored_objects(server, wheel.filename) == []
    assert "upstream too slow" in server.log() and "UPSTREAM_MIN_RATE" in server.log()

    upstream.file_delay = 0.0
    response = httpx.get(file_url(server, "dribbler", wheel.filename), timeout=30)
    assert response.status_code == 200 and response.content == wheel.data


def test_files_past_max_file_size_are_refused_listed_size_or_not(server, upstream):
    unsized = dists.wheel("unsized", "1.0", payload_size=2 * MAX_FILE_SIZE)
    upstream.publish("unsized", unsized, "1.0").sized = False
    listed = dists.wheel("oversized", "1.0", payload_size=2 * MAX_FILE_SIZE)
    upstream.publish("oversized", listed, "1.0")
    assert "size" not in page_files(server, "unsized")[unsized.filename]

    # Listed without a size: spooled (and sent along) up to MAX_FILE_SIZE, then cut off.
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(file_url(server, "unsized", unsized.filename), timeout=30)
    assert f"more than {MAX_FILE_SIZE} bytes" in server.log()
    assert stored_rows(server, unsized.filename) == 0
    deadline = time.monotonic() + 5
    while list((server.data_dir / "spool").glob("dl-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((server.data_dir / "spool").glob("dl-*")) == []

    page_files(server, "oversized")
    response = httpx.get(file_url(server, "oversized", listed.filename), timeout=30)
    assert response.status_code == 502
    assert "MAX_FILE_SIZE" in response.text and response.text.count("\n") == 1
    assert upstream.fetch_count(listed.filename) == 0

