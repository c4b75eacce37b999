"""Fresh and fast: a page's identity comes from its content, waiting on upstream is bounded,
a failing upstream trips a breaker, and a missing name costs one upstream request."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import httpx

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.proxy import JSON, STALE_HEADER, get_page
from tests.support.server import HavartiServer

ONE_WORKER = [sys.executable, "-m", "havarti.cli", "serve", "--workers", "1"]


def start(start_server: Callable[..., HavartiServer], upstream: FakeIndex,
          **env: str) -> HavartiServer:
    # One worker: breaker and negative cache are per process, and the test counts requests.
    return start_server({"PASSCODE": PASSCODE, "FALLBACK": upstream.url, "UPSTREAM_TIMEOUT": "3",
                         **env}, command=ONE_WORKER)


def versions(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return response.json()["versions"]


def test_etags_come_from_content_when_upstream_sends_no_validators(start_server, upstream,
                                                                    tmp_path):
    upstream.validators = False
    upstream.publish("plain", dists.wheel("plain", "1.0"), "1.0")
    server = start(start_server, upstream)
    first = get_page(server, "plain")
    again = get_page(server, "plain")
    etag = first.headers["ETag"]
    assert again.headers["ETag"] == etag
    assert upstream.page_count("plain") == 2  # every request still asks upstream

    # A client holding the page gets a 304, in each format, each with its own tag.
    html = httpx.get(f"{server.index_url}plain/")
    assert html.headers["ETag"] != etag
    for accept, tag in ((JSON, etag), ("text/html", html.headers["ETag"])):
        response = httpx.get(f"{server.index_url}plain/",
                             headers={"Accept": accept, "If-None-Match": tag})
        assert response.status_code == 304, (accept, response.status_code)

    # The same content after a restart has the same tag: it is not a fetch time.
    server.restart()
    assert get_page(server, "plain").headers["ETag"] == etag

    # New upstream bytes: the next request shows them, with a new tag.
    upstream.publish("plain", dists.wheel("plain", "2.0"), "2.0")
    response = httpx.get(f"{server.index_url}plain/", headers={"Accept": JSON, "If-None-Match": etag})
    assert response.status_code == 200 and versions(response) == ["1.0", "2.0"]
    assert response.headers["ETag"] != etag


def test_a_slow_upstream_costs_at_most_revalidate_wait(start_server, upstream):
    upstream.publish("slowpoke", dists.wheel("slowpoke", "1.0"), "1.0")
    server = start(start_server, upstream, REVALIDATE_WAIT="0.5", UPSTREAM_TIMEOUT="10")
    assert versions(get_page(server, "slowpoke")) == ["1.0"]

    upstream.publish("slowpoke", dists.wheel("slowpoke", "2.0"), "2.0")
    upstream.page_delay = 2.0
    started = time.monotonic()
    response = get_page(server, "slowpoke")
    assert time.monotonic() - started < 1.5
    assert STALE_HEADER in response.headers and versions(response) == ["1.0"]

    # The check went on in the background: once upstream has answered, the next request
    # has the new version, even though upstream is still slow for it.
    time.sleep(2.5)
    response = get_page(server, "slowpoke")
    assert versions(response) == ["1.0", "2.0"]


def test_the_breaker_opens_on_a_hanging_upstream_and_a_probe_closes_it(start_server, upstream):
    upstream.publish("tripped", dists.wheel("tripped", "1.0"), "1.0")
    server = start(start_server, upstream, UPSTREAM_TIMEOUT="1", REVALIDATE_WAIT="5",
                   UPSTREAM_BREAKER_FAILURES="2", UPSTREAM_BREAKER_SECONDS="2")
    assert versions(get_page(server, "tripped")) == ["1.0"]
    upstream.hang_seconds, upstream.mode = 5, "hang"
    for _ in range(2):  # each waits for the timeout, then gets the stored page
        assert STALE_HEADER in get_page(server, "tripped").headers

    asked = upstream.page_count("tripped")
    started = time.monotonic()
    response = get_page(server, "tripped")
    assert time.monotonic() - started < 0.5  # open: no timeout to wait for
    assert "circuit open" in response.headers[STALE_HEADER]
    assert upstream.page_count("tripped") == asked
    never_seen = get_page(server, "never-seen")
    assert never_seen.status_code == 502 and "circuit open" in never_seen.text
    ready = httpx.get(f"{server.url}/ready")
    assert ready.status_code == 503 and "circuit breaker open" in ready.text

    # Upstream is back; after the breaker's wait, one probe closes it again.
    upstream.mode = "up"
    upstream.publish("tripped", dists.wheel("tripped", "1.1"), "1.1")
    time.sleep(2.2)
    response = get_page(server, "tripped")
    assert STALE_HEADER not in response.headers and versions(response) == ["1.0", "1.1"]


def test_a_burst_for_a_missing_name_costs_one_upstream_request(start_server, upstream):
    server = start(start_server, upstream, NOT_FOUND_TTL="4")
    started = time.monotonic()
    for _ in range(10):
        assert get_page(server, "not-yet").status_code == 404
    assert time.monotonic() - started < 4, "too slow to test within NOT_FOUND_TTL"
    assert upstream.page_count("not-yet") == 1

    upstream.publish("not-yet", dists.wheel("not-yet", "1.0"), "1.0")
    time.sleep(4.1)
    assert versions(get_page(server, "not-yet")) == ["1.0"]


def test_ready_asks_upstream_one_small_question_and_reuses_it(start_server, upstream):
    server = start(start_server, upstream)
    for _ in range(5):
        response = httpx.get(f"{server.url}/ready")
        assert response.status_code == 200, response.text
    assert upstream.fetches["root"] == 0  # never the whole project list
    assert sum(n for key, n in upstream.fetches.items() if key.startswith("head:")) == 1
    assert upstream.url not in response.text and str(server.data_dir) not in response.text
