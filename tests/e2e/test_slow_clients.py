"""Slow and greedy clients cost them, not everyone else: both command lines, real servers.

Every slow client here is bounded in count and time and targets loopback only
(tests/support/slowclients.py). The well-behaved probes come from 127.0.0.1,
the slow clients from 127.0.0.2: two client addresses, as in real life.
"""

from __future__ import annotations

import base64
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.server import HavartiServer, free_port
from tests.support.slowclients import SlowClients, probe
from tests.support.uploads import post_upload, stored_objects

ROOT = Path(__file__).resolve().parents[2]
AUTH = "Basic " + base64.b64encode(f"havarti:{PASSCODE}".encode()).decode()
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1"


def seed_line(port: int) -> list[str]:
    """The seed's web command exactly (the Procfile's `web`), run from the repository root."""
    return [sys.executable, "-m", "gunicorn", "-w", "3", "--preload", "-b", f"0.0.0.0:{port}",
            "havarti:app"]


def serve_line(port: int) -> list[str]:
    return [sys.executable, "-m", "havarti.cli", "serve"]


COMMANDS = {"seed-gunicorn-line": seed_line, "havarti-serve": serve_line}


@pytest.fixture(params=list(COMMANDS))
def command_server(request, tmp_path):
    """A server started by one command line; ``.start(env)`` to run it, stopped after the test."""
    started: list[HavartiServer] = []

    def start(env: dict[str, str] | None = None) -> HavartiServer:
        port = free_port()
        server = HavartiServer(tmp_path / "data", {"PASSCODE": PASSCODE, **(env or {})}, port=port,
                               command=COMMANDS[request.param](port), cwd=ROOT)
        started.append(server)
        return server.start(timeout=60)

    yield start
    for server in started:
        server.stop()


def test_slow_downloads_do_not_delay_pages(command_server):
    # Issue 10: six clients downloading a cached 16 MB wheel at 50 kB/s held the seed's
    # sync workers (and a page request) for 17 s.
    server = command_server()
    big = dists.wheel("bigwheel", "1.0", payload_size=16 * 2**20)
    assert post_upload(server.url, big, PASSCODE).status_code == 200
    assert post_upload(server.url, dists.wheel("six", "1.0"), PASSCODE).status_code == 200
    page = f"{server.url}/simple/six/"
    before = probe(page, 8, interval=0.05, headers={"Accept": PIP_ACCEPT})
    slow = SlowClients("127.0.0.1", server.port, seconds=8)
    slow.slow_downloads(6, f"/files/bigwheel/{big.filename}", rate=50_000)
    time.sleep(1.5)  # all six are mid-download, their server threads blocked on the sockets
    during = probe(page, 12, interval=0.25, headers={"Accept": PIP_ACCEPT})
    slow.join()
    assert slow.opened == 6
    assert during.answered == len(during.times), during.times
    # Not delayed by more than 100 ms (the median; a single hiccup of a loaded machine aside).
    assert during.median - before.median < 0.1, (before.times, during.times)
    assert during.worst < 1.0, during.times


def test_slowloris_and_stalled_uploads_leave_health_and_files_answering(command_server):
    # Issue 11: 64 connections each sending one header line a second, or 40 authenticated
    # uploads that stall, made /health stop answering (0 of 4 probes within 5 s). Here 200
    # slow connections at once: 160 of the first kind, 40 of the second.
    server = command_server()
    wheel = dists.wheel("served", "1.0")
    assert post_upload(server.url, wheel, PASSCODE).status_code == 200
    slow = SlowClients("127.0.0.1", server.port, seconds=12)
    slow.header_dribblers(160)
    slow.stalled_uploads(40, authorization=AUTH)
    time.sleep(2)  # every slow connection open and stuck
    health = probe(f"{server.url}/health", 10, interval=0.2, timeout=5)
    files = probe(f"{server.url}/files/served/{wheel.filename}", 5, interval=0.2, timeout=5)
    slow.join()
    assert slow.opened == 200
    assert health.answered == 10 and health.worst < 1.0, health.times
    assert files.answered == 5 and files.worst < 1.0, files.times


def test_a_head_that_never_ends_is_cut_at_the_header_deadline(start_server):
    server = start_server({"HEADER_TIMEOUT": "1"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = _read_all(sock, until=time.monotonic() + 8)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert time.monotonic() - started < 4
    assert "slow-client header-deadline" in server.log()
    # A connection that sends nothing at all is cut the same way.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        assert _read_all(sock, until=time.monotonic() + 8).startswith(b"HTTP/1.1 408 ")


def test_a_stalled_upload_body_is_cut_and_nothing_is_stored(start_server):
    server = start_server({"PASSCODE": PASSCODE, "BODY_TIMEOUT": "1"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"POST /legacy/ HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
                     "Content-Type: multipart/form-data; boundary=slow\r\n"
                     f"Content-Length: {10 * 2**20}\r\n\r\n--slow\r\n".encode())
        started = time.monotonic()
        answer = _read_all(sock, until=time.monotonic() + 10)
    assert answer.split(b" ", 2)[1].startswith(b"4"), answer  # refused, and the socket closed
    assert time.monotonic() - started < 5
    assert "slow-client body-deadline" in server.log()
    assert stored_objects(server.data_dir) == {}
    # A healthy upload still goes through (its body is larger than what the event loop reads).
    dist = dists.wheel("healthy", "1.0", payload_size=300_000)
    assert post_upload(server.url, dist, PASSCODE).status_code == 200


def test_a_client_that_stops_reading_a_download_is_cut(start_server):
    server = start_server({"PASSCODE": PASSCODE, "BODY_TIMEOUT": "1"})
    big = dists.wheel("unread", "1.0", payload_size=16 * 2**20)
    assert post_upload(server.url, big, PASSCODE).status_code == 200
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(f"GET /files/unread/{big.filename} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        deadline = time.monotonic() + 10
        while "slow-client send-deadline" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "slow-client send-deadline" in server.log()
        # The server shut the connection: what is left arrives, then the end.
        sock.settimeout(5)
        received = 0
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    assert received < len(big.data)


def test_connections_per_client_address_are_bounded(start_server):
    server = start_server({"MAX_CLIENT_CONNECTIONS": "5"}, command=None)
    # Two workers: at most 5 each from one address; the rest answered 429 and closed at once.
    held: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(30):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.settimeout(3)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(b"GET /health HTTP/1.1\r\n")  # a head left open
            held.append(sock)
        time.sleep(0.5)
        for sock in held:
            sock.setblocking(False)
            try:
                data = sock.recv(200)
            except BlockingIOError:
                continue
            refused += data.startswith(b"HTTP/1.1 429 ")
        assert 30 - refused <= 10, refused
        assert httpx.get(f"{server.url}/health", timeout=2).status_code == 200  # another address
    finally:
        for sock in held:
            sock.close()
    assert "slow-client too-many-connections remote=127.0.0.2" in server.log()


def _read_all(sock: socket.socket, until: float) -> bytes:
    data = b""
    while time.monotonic() < until:
        sock.settimeout(max(0.1, until - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_the_guard_keeps_http_framing(start_server):
    """Pipelined requests, a small body in two pieces, a chunked body: as gunicorn alone."""
    server = start_server({"PASSCODE": PASSCODE})
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_all(sock, until=time.monotonic() + 5).count(b"HTTP/1.1 200 ") == 3
    yank = "/api/projects/nothing/files/nothing-1.0.tar.gz/yank"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"POST {yank} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"reason\":".encode())
        time.sleep(0.3)
        sock.sendall(b' "abcdefg"}')
        assert sock.recv(200).startswith(b"HTTP/1.1 404 ")  # the body was read whole
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"POST {yank} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "2\r\n{}\r\n0\r\n\r\n".encode())
        assert sock.recv(200).startswith(b"HTTP/1.1 404 ")
