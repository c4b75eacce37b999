"""Hostile clients against the real server (gunicorn): a clear 4xx, no traceback, no forged log
line, and passcode guessing throttled per client address."""

from __future__ import annotations

import base64
import re
import socket
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.server import HavartiServer

EVENT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} level=")


@pytest.fixture(scope="module")
def upstream_index() -> Iterator[FakeIndex]:
    fake = FakeIndex().start()
    yield fake
    fake.down()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory,
            upstream_index: FakeIndex) -> Iterator[HavartiServer]:
    """One worker (its throttle is the one every request meets), behind one trusted proxy hop,
    with the per-request log on."""
    server = HavartiServer(tmp_path_factory.mktemp("hostile") / "data", {
        "PASSCODE": PASSCODE, "FALLBACK": upstream_index.url, "UPSTREAM_TIMEOUT": "3",
        "DEBUG": "true", "TRUSTED_PROXIES": "1"},
        command=[sys.executable, "-m", "havarti.cli", "serve", "--workers", "1"])
    server.start()
    yield server
    server.stop()


def raw(server: HavartiServer, request: bytes) -> tuple[int, bytes, bytes]:
    """Send bytes as they are; the status, the header block and the body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


def auth_header(password: str) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(f"havarti:{password}".encode()) + b"\r\n"


def no_tracebacks(server: HavartiServer) -> None:
    log = server.log()
    assert "Traceback" not in log and "Exception on" not in log, log[-3000:]


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",              # not a chunk size
    b"5\r\nhelloXX0\r\n\r\n",                  # chunk without its CRLF terminator
    b"5;\x01=x\r\nhello\r\n0\r\n\r\n",         # bad chunk extension
], ids=["size", "terminator", "extension"])
def test_a_malformed_chunked_body_is_a_400(hostile, body):
    for path in ("/", "/api/projects/x/files/x-1.0.tar.gz/yank"):
        content_type = (b"multipart/form-data; boundary=b" if path == "/" else b"application/json")
        # From an address of its own (one trusted proxy hop): the guessing test throttles 127.0.0.1.
        status, _, answer = raw(hostile, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                                + auth_header(PASSCODE) + b"X-Forwarded-For: 192.0.2.1\r\n"
                                + b"Content-Type: " + content_type + b"\r\n"
                             b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body)
        assert status == 400, answer
        assert b"malformed request body" in answer and answer.count(b"\n") == 1
    no_tracebacks(hostile)


@pytest.mark.parametrize("path", ["/simple/%0d%0aX-Injected:%201/", "/simple/a%00b/",
                                  "/simple/%0a/", "/files/x%00/x-1.0.tar.gz",
                                  "/pypi/x%0d%0a/json", "/projects/%00/", "/simple/%23/",
                                  "/simple/%3f/", "/simple/%09/"])
def test_cr_lf_nul_and_non_names_in_project_urls_are_a_400(hostile, upstream_index, path):
    asked = len(upstream_index.requests)
    status, head, answer = raw(
        hostile, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status == 400, answer
    assert answer.count(b"\n") == 1
    assert not re.search(rb"(?im)^(x-injected|location):", head), head
    assert len(upstream_index.requests) == asked
    no_tracebacks(hostile)


def test_a_path_cannot_forge_a_log_line(hostile):
    forged = "2026-01-01 00:00:00,000 level=ERROR logger=havarti.web forged"
    for path in (f"/simple/x%0d%0a{forged.replace(' ', '%20')}/",
                 f"/nowhere%0a{forged.replace(' ', '%20')}",
                 f"/projects/x%E2%80%A8{forged.replace(' ', '%20')}/"):
        httpx.get(hostile.url + path)
    log = hostile.log()
    ours = [line for line in log.splitlines() if EVENT.match(line) and "forged" in line]
    assert len(ours) == 3 and all("\\n2026" in line or "\\u2028" in line for line in ours), ours
    for line in log.splitlines():
        assert not line.startswith("2026-01-01 00:00:00"), line
        if "forged" in line:
            # Ours (the request line, escaped), or gunicorn's own lines (percent-encoded).
            assert (EVENT.match(line) or line.startswith("[")
                    or re.match(r'^\S+ - - \[[^]]+\] "GET ', line)), line


def test_passcode_guessing_is_throttled_per_address(hostile):
    wheel = dists.wheel("throttled-cheese", "1.0")
    guesser = httpx.Client(base_url=hostile.url)
    statuses = [guesser.post("/", auth=("havarti", f"guess-{i}")).status_code
                for i in range(25)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}, statuses
    refused = guesser.post("/", auth=("havarti", PASSCODE))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # The owner, from another address (127.0.0.2), uploads as ever.
    owner = httpx.Client(base_url=hostile.url,
                         transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    response = owner.post("/", auth=("havarti", PASSCODE), data={
        ":action": "file_upload", "name": "throttled-cheese", "version": "1.0",
        "sha256_digest": wheel.sha256}, files={"content": (wheel.filename, wheel.data)})
    assert response.status_code == 200, response.text
    log = hostile.log()
    assert log.count("auth-failed remote=127.0.0.1") == 10
    metrics = httpx.get(hostile.url + "/metrics").text
    assert 'havarti_auth_failures_total{result="wrong_passcode"}' in metrics


def test_behind_the_trusted_proxy_each_forwarded_address_has_its_own_throttle(hostile):
    wheel = dists.wheel("forwarded-cheese", "1.0")
    for _ in range(12):
        last = httpx.post(hostile.url + "/", auth=("havarti", "wrong"),
                          headers={"X-Forwarded-For": "203.0.113.50"})
    assert last.status_code == 429
    response = httpx.post(hostile.url + "/", auth=("havarti", PASSCODE), headers={
        "X-Forwarded-For": "198.51.100.20"}, data={
        ":action": "file_upload", "name": "forwarded-cheese", "version": "1.0"},
        files={"content": (wheel.filename, wheel.data)})
    assert response.status_code == 200, response.text
    assert "auth-failed remote=203.0.113.50" in hostile.log()
