"""Slow and hostile clients, bounded in count and time, against a server on loopback only.

Used by the slow-client tests and by bench/serving.py. Every client here stops
by itself: each one is a thread that ends at its deadline and closes its
socket, and the number of them is fixed by the caller.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

#: Only loopback is ever a target.
LOOPBACK = "127."


def _loopback(host: str) -> None:
    if not host.startswith(LOOPBACK):
        raise ValueError(f"slow clients target loopback only, not {host!r}")


@dataclass
class SlowClients:
    """A fixed number of slow connections, each on its own thread, all ended by ``seconds``.

    ``source`` is the loopback address they connect from (127.0.0.2 by default), so
    a well-behaved probe from 127.0.0.1 is a different client to the server.
    """

    host: str
    port: int
    seconds: float
    source: str = "127.0.0.2"
    opened: int = 0
    refused: int = 0
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        _loopback(self.host)
        _loopback(self.source)
        self.deadline = time.monotonic() + self.seconds

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.socket()
            sock.bind((self.source, 0))
            sock.settimeout(5)
            sock.connect((self.host, self.port))
        except OSError:
            with self._lock:
                self.refused += 1
            return None
        with self._lock:
            self.opened += 1
        return sock

    def _start(self, target: Callable[[socket.socket], None]) -> None:
        def run() -> None:
            sock = self._connect()
            if sock is None:
                return
            try:
                target(sock)
            except OSError:
                pass  # the server closed it: what a guard is for
            finally:
                sock.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _wait(self, step: float) -> bool:
        """Sleep ``step``; False once the deadline has passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(step, remaining))
        return time.monotonic() < self.deadline

    def header_dribblers(self, count: int, path: str = "/health") -> None:
        """``count`` connections sending one header line a second, never finishing the head."""
        def dribble(sock: socket.socket) -> None:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n".encode())
            line = 0
            while self._wait(1.0):
                line += 1
                sock.sendall(f"X-Slow-{line}: {line}\r\n".encode())

        for _ in range(count):
            self._start(dribble)

    def stalled_uploads(self, count: int, authorization: str | None = None) -> None:
        """``count`` uploads announcing 10 MB, sending the first line of the form, then nothing."""
        auth = f"Authorization: {authorization}\r\n" if authorization else ""

        def stall(sock: socket.socket) -> None:
            sock.sendall(f"POST /legacy/ HTTP/1.1\r\nHost: {self.host}\r\n{auth}"
                         "Content-Type: multipart/form-data; boundary=slow\r\n"
                         f"Content-Length: {10 * 2**20}\r\n\r\n--slow\r\n".encode())
            while self._wait(1.0):
                pass

        for _ in range(count):
            self._start(stall)

    def slow_downloads(self, count: int, path: str, rate: int = 50_000) -> None:
        """``count`` GETs of ``path`` reading at most ``rate`` bytes a second."""
        def download(sock: socket.socket) -> None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
            chunk = max(1, rate // 10)
            while self._wait(0.1):
                if not sock.recv(chunk):
                    return

        for _ in range(count):
            self._start(download)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=max(0.0, self.deadline - time.monotonic()) + 10)


@dataclass
class Probe:
    """How long well-behaved requests took, in seconds (None: failed or timed out)."""

    times: list[float | None]

    @property
    def answered(self) -> int:
        return sum(t is not None for t in self.times)

    @property
    def worst(self) -> float:
        return max((t if t is not None else float("inf")) for t in self.times) if self.times else 0.0

    @property
    def median(self) -> float:
        done = [t for t in self.times if t is not None]
        return statistics.median(done) if done else float("inf")


def probe(url: str, count: int, interval: float = 0.25, timeout: float = 5.0,
          headers: dict[str, str] | None = None) -> Probe:
    """GET ``url`` ``count`` times on fresh connections, ``interval`` apart."""
    _loopback(httpx.URL(url).host)
    times: list[float | None] = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            with httpx.Client(timeout=timeout) as client:
                ok = client.get(url, headers=headers or {}).status_code == 200
            times.append(time.perf_counter() - started if ok else None)
        except httpx.HTTPError:
            times.append(None)
        time.sleep(interval)
    return Probe(times)
