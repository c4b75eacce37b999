"""Errors as each client sees them: the site's layout for a browser, one plain line for
tools, the same reason in the HTTP reason phrase for both.

And `havarti serve` with a Redis and an upstream it cannot reach: a warning line each,
and it serves on.
"""

from __future__ import annotations

import re
import time
from html import unescape

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.clients import installed_version
from tests.support.fakeindex import running_index
from tests.support.server import HavartiServer, free_port
from tests.support.uploads import post_upload

#: What Chromium and Firefox send when following a link.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
#: pip's and uv's Accept on the simple API, and what curl and twine (requests) send.
PIP = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
       "text/html; q=0.01")
UV = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
      "text/html;q=0.01")
TOOLS = {"pip": PIP, "uv": UV, "curl": "*/*", "plain": "text/plain"}

ERRORS = [
    ("/projects/?page=0", 400, "page must be a whole number"),
    ("/projects/no-such-cheese/files/nope.whl/", 404, "no-such-cheese"),
    ("/projects/brie/files/brie-9.0.tar.gz/", 404, "no file 'brie-9.0.tar.gz' in project 'brie'"),
    ("/simple/no-such-cheese/", 404, "no-such-cheese"),
    ("/files/brie/brie-9.0.tar.gz", 404, "brie-9.0.tar.gz"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the module's read-only checks (starting one costs seconds)."""
    with running_index() as upstream:
        upstream.publish("brie", dists.wheel("brie", "1.0"), "1.0")
        server = HavartiServer(tmp_path_factory.mktemp("errors") / "data",
                               {"PASSCODE": PASSCODE, "FALLBACK": upstream.url}).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.mark.parametrize("path,status,reason", ERRORS)
def test_browser_gets_the_reason_in_the_site_layout(served, path, status, reason):
    response = httpx.get(served.url + path, headers={"Accept": BROWSER})
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert reason in response.reason_phrase
    body = response.text
    assert '<nav aria-label="Main">' in body and 'href="/static/havarti.css"' in body
    shown = re.search(r'id="error-reason">(.*?)</p>', body, re.S)
    assert shown is not None and unescape(shown.group(1)) == response.reason_phrase
    assert "Content-Security-Policy" in response.headers and "Accept" in response.headers["Vary"]


@pytest.mark.parametrize("path,status,reason", ERRORS)
def test_tools_get_one_plain_line(served, path, status, reason):
    for tool, accept in TOOLS.items():
        response = httpx.get(served.url + path, headers={"Accept": accept})
        if path.startswith("/simple/") and tool == "plain":
            # The simple API offers no text/plain page: 406, itself one plain line.
            status, reason = 406, "acceptable formats"
        assert response.status_code == status, tool
        assert response.headers["Content-Type"].startswith("text/plain"), tool
        line = response.text
        assert line.endswith("\n") and "\n" not in line.rstrip("\n") and reason in line, tool
        assert response.reason_phrase == line.strip(), tool


def test_upload_refusal_stays_plain_for_twine(served, tmp_path):
    # twine (requests) sends */*: the reason it prints is the reason phrase and the body.
    response = post_upload(served.url, dists.wheel("brie", "2.0"), "wrong-passcode")
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/plain")


def test_serve_warns_about_unreachable_redis_and_upstream_and_serves_on(start_server, clients,
                                                                         tmp_path):
    redis_port, upstream_port = free_port(), free_port()
    started = time.monotonic()
    server = start_server({"PASSCODE": PASSCODE,
                           "REDIS_URI": f"redis://127.0.0.1:{redis_port}/0",
                           "FALLBACK": f"http://127.0.0.1:{upstream_port}/simple/"})
    took = time.monotonic() - started
    warnings = [line.strip() for line in server.log().splitlines() if "warning:" in line]
    assert [w.split(" (")[0] for w in warnings] == ["warning: REDIS_URI", "warning: FALLBACK"]
    assert f"127.0.0.1:{redis_port}" in warnings[0] and f"127.0.0.1:{upstream_port}" in warnings[1]
    assert took < 30
    # Serving goes on: a private package uploads and installs.
    wheel = dists.wheel("curd", "1.0")
    assert post_upload(server.url, wheel, PASSCODE).status_code == 200
    result, target = clients.pip_install(server.index_url, "curd")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "curd") == "1.0"
