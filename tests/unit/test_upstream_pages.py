"""The page half of the upstream client against real sockets: bounded in size and time,
redirects kept on the upstream's host, and the breaker in front."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from havarti.errors import UpstreamError
from havarti.upstream.breaker import CircuitBreaker
from havarti.upstream.client import UpstreamClient

Handler = Callable[[socket.socket], None]


@pytest.fixture
def raw_upstream() -> Iterator[Callable[[Handler], str]]:
    """A loopback server answering every connection with ``handler``; yields its index URL."""
    servers: list[socket.socket] = []

    def start(handler: Handler) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        servers.append(server)

        def serve() -> None:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                with connection:
                    connection.recv(65536)
                    try:
                        handler(connection)
                    except OSError:
                        pass

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}/simple/"

    yield start
    for server in servers:
        server.close()


def page_head(length: int, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pypi.simple.v1+json\r\n"
            f"Content-Length: {length}\r\n{extra}Connection: close\r\n\r\n").encode()


def test_a_page_over_max_upstream_page_is_refused(raw_upstream):
    body = b'{"meta":{"api-version":"1.1"},"files":[]}' + b" " * 5000
    url = raw_upstream(lambda c: c.sendall(page_head(len(body)) + body))
    with pytest.raises(UpstreamError, match="MAX_UPSTREAM_PAGE"):
        UpstreamClient(url, 5, max_page_size=1000).fetch_project("big")


def test_a_page_over_the_bound_without_a_length_is_cut_at_the_bound(raw_upstream):
    def endless(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
        for _ in range(100):
            connection.sendall(b"x" * 1000)

    url = raw_upstream(endless)
    with pytest.raises(UpstreamError, match="MAX_UPSTREAM_PAGE"):
        UpstreamClient(url, 5, max_page_size=10_000).fetch_project("endless")


def test_a_dribbling_page_is_cut_at_page_deadline(raw_upstream):
    def dribble(connection: socket.socket) -> None:
        connection.sendall(page_head(1000))
        for _ in range(100):
            connection.sendall(b" ")
            time.sleep(0.1)

    url = raw_upstream(dribble)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="longer than") as raised:
        UpstreamClient(url, 5, page_deadline=1.0).fetch_project("slow")
    assert raised.value.timeout
    # Each byte came well within the per-read timeout: only the total deadline stops it.
    assert time.monotonic() - started < 3


def test_a_page_redirected_to_another_host_is_refused(raw_upstream):
    url = raw_upstream(lambda c: c.sendall(
        b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.2:9/simple/x/\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"))
    with pytest.raises(UpstreamError, match="another host"):
        UpstreamClient(url, 5).fetch_project("moved")


def test_the_breaker_fails_fast_once_open(raw_upstream):
    url = raw_upstream(lambda c: c.sendall(
        b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
    client = UpstreamClient(url, 5, breaker=CircuitBreaker(2, 60))
    for _ in range(2):
        with pytest.raises(UpstreamError, match="answered 503"):
            client.fetch_project("down")
    with pytest.raises(UpstreamError, match="circuit open"):
        client.fetch_project("down")
