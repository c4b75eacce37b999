"""gunicorn's threaded worker, guarded against slow and greedy clients.

gunicorn's ``gthread`` worker hands a connection to a thread as soon as its
first byte arrives; the thread then reads the request head with no deadline,
before any route or passcode check. 64 clients sending one header line a
second, or a few dozen authenticated uploads that stall, then hold every
thread, and ``/health`` stops answering. This worker changes four things:

- **The head is read by the event loop**, not a thread, and must be complete
  within ``HEADER_TIMEOUT`` seconds of the connection (or of the previous
  answer on a kept-alive one); later it is answered 408 and closed. A thread
  only ever sees a request whose head is already here, together with its body
  when that is small (up to :data:`SMALL_BODY`).
- **Larger bodies (uploads) share a quarter of the threads** (at least one):
  an upload beyond that waits in the event loop, holding no thread, and is
  answered 503 if no slot frees up within :data:`SLOT_WAIT` seconds. Pages,
  files and ``/health`` always have the other threads.
- **A body must make progress**: each read waits at most ``BODY_TIMEOUT``
  seconds, and the whole body may take no longer than ``BODY_TIMEOUT`` plus
  the time it needs at :data:`MIN_BODY_RATE`. Past that the application sees
  the body end (an upload is then refused as incomplete, nothing stored) and
  the connection closes. Sending a response has the same idle bound, so a
  client that stops reading a download frees its thread too (the event loop
  looks at each answering socket's unsent bytes once a second).
- **One client address holds at most ``MAX_CLIENT_CONNECTIONS`` connections
  per worker process**; more are answered 429 and closed at once.

Each refusal is a ``slow-client <kind> remote=<address>`` log line, at most one
per kind and address every :data:`LOG_EVERY` seconds (the rest are counted).

It is the worker class of both ``havarti serve`` and the seed's ``gunicorn
... havarti:app`` line (through ``gunicorn.conf.py``). TLS and HTTP/2
listeners, which Havarti does not use (a router or proxy terminates TLS), keep
gunicorn's own behaviour.
"""

from __future__ import annotations

import errno
import fcntl
import io
import logging
import re
import selectors
import socket
import struct
import termios
import time
from collections import Counter, deque
from functools import partial
from typing import Any

from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

log = logging.getLogger("havarti.worker")

#: A body up to this size is read with the head, by the event loop.
SMALL_BODY = 64 * 1024
#: A request head (request line and header fields) larger than this is refused (431).
MAX_HEAD = 64 * 1024
#: Seconds an upload may wait for a free upload thread before a 503.
SLOT_WAIT = 30.0
#: Bytes a second a request body must average, after BODY_TIMEOUT's grace.
MIN_BODY_RATE = 16 * 1024

_END = b"\r\n\r\n"
_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d+)[ \t]*$", re.I | re.M)
_CHUNKED_OR_CONTINUE = re.compile(rb"^(transfer-encoding|expect)[ \t]*:", re.I | re.M)


class Limits:
    """The guard's settings, read from the environment like every other setting."""

    def __init__(self) -> None:
        from havarti.config import ConfigError, Settings, load_settings

        try:
            settings = load_settings()
        except ConfigError:
            settings = Settings()  # the application's own start-up reports the error
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        self.per_client = settings.max_client_connections


#: A kind of refusal is logged at most once per client address in this many seconds.
LOG_EVERY = 10.0
_last_noted: dict[tuple[str, str], list[float]] = {}


def note(kind: str, address: str, detail: str = "") -> None:
    """One ``slow-client`` log line; repeats from one address are counted, not each logged."""
    now = time.monotonic()
    seen = _last_noted.get((kind, address))
    if seen is not None and now - seen[0] < LOG_EVERY:
        seen[1] += 1
        return
    repeated = f" repeated={int(seen[1])}" if seen is not None and seen[1] else ""
    if len(_last_noted) > 10_000:
        _last_noted.clear()
    _last_noted[(kind, address)] = [now, 0]
    log.warning("slow-client %s remote=%s%s%s", kind, address, f" {detail}" if detail else "", repeated)


def _client_address(client: Any) -> str:
    return client[0] if isinstance(client, tuple) and client else str(client)


class BodyClock:
    """The socket as the request parser reads it: every read bounded by the body deadline.

    When the deadline passes, reads return end-of-data: the application sees
    a short body, and the worker closes the connection after answering.
    """

    def __init__(self, sock: socket.socket, limits: Limits) -> None:
        self.sock = sock
        self.limits = limits
        self.expired = False
        self.arm()

    def arm(self) -> None:
        """A new request starts: its body gets a fresh allowance."""
        self.started = time.monotonic()
        self.received = 0

    def recv(self, size: int) -> bytes:
        if self.expired:
            return b""
        limits = self.limits
        remaining = (self.started + limits.body_timeout + self.received / MIN_BODY_RATE
                     - time.monotonic())
        wait = min(limits.body_timeout, remaining)
        previous = self.sock.gettimeout()
        try:
            if wait <= 0:
                raise TimeoutError
            self.sock.settimeout(wait)
            data = self.sock.recv(size)
        except TimeoutError:
            self.expired = True
            note("body-deadline", _client_address(self.sock_peer()), f"received={self.received}")
            return b""
        finally:
            try:
                self.sock.settimeout(previous)
            except OSError:
                pass
        self.received += len(data)
        return data

    def sock_peer(self) -> Any:
        try:
            return self.sock.getpeername()
        except OSError:
            return "?"

    # finish_body() bounds its drain through these.
    def gettimeout(self) -> float | None:
        return self.sock.gettimeout()

    def settimeout(self, value: float | None) -> None:
        self.sock.settimeout(value)


class GuardedConn(TConn):  # type: ignore[misc]
    """A connection that knows its worker, to release its client count and slot on close."""

    def __init__(self, worker: GuardedThreadWorker, *args: Any) -> None:
        super().__init__(*args)
        self.worker = worker
        self.address = _client_address(self.client)
        self.head = bytearray()
        self.deadline = 0.0
        self.needed = 0  # bytes of head + small body to gather; 0 = head not complete yet
        self.ready = False  # gathered: the next enqueue goes to a thread
        self.slot = False  # holds one of the upload threads
        self.watched = False  # registered with the event loop for reading
        self.clock: BodyClock | None = None
        self.closed = False

    def close(self, graceful: bool = False) -> None:
        if not self.closed:
            self.closed = True
            self.worker.forget(self)
        super().close(graceful)


class GuardedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with the guards described in this module's docstring."""

    def init_process(self) -> None:
        self.limits = Limits()
        self.per_client: Counter[str] = Counter()
        self.gathering: dict[GuardedConn, None] = {}
        self.slots = max(1, self.cfg.threads // 4)
        self.slots_busy = 0
        self.slot_queue: deque[GuardedConn] = deque()
        self.guarded = not self.cfg.is_ssl
        #: Connections a thread is answering: [bytes unsent when last looked, when that changed].
        self.answering: dict[GuardedConn, list[float]] = {}
        self._next_sweep = 0.0
        super().init_process()

    # Connections in

    def accept(self, listener: socket.socket) -> None:
        if not self.guarded:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return None
            raise
        if negotiation.prior_knowledge_allowed(self.cfg, client_addr):
            # HTTP/2 with prior knowledge: gunicorn's own handling.
            self.nr_conns += 1
            client_sock.setblocking(True)
            return self.enqueue_req(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))
        address = _client_address(client_addr)
        # (A Unix socket's clients have no address to tell them apart.)
        if self.limits.per_client and address and self.per_client[address] >= self.limits.per_client:
            note("too-many-connections", address, f"held={self.per_client[address]}")
            _answer_and_close(client_sock, "429 Too Many Requests")
            return None
        self.nr_conns += 1
        self.per_client[address] += 1
        conn = GuardedConn(self, self.cfg, client_sock, client_addr, listener.getsockname())
        return self.enqueue_req(conn)

    def enqueue_req(self, conn: TConn) -> None:
        """Every way to a thread comes here: gather the head first unless already done."""
        if not isinstance(conn, GuardedConn) or conn.ready:
            if isinstance(conn, GuardedConn):
                conn.ready = False
                self.answering[conn] = [0, time.monotonic()]
            return super().enqueue_req(conn)
        self._gather(conn)
        return None

    def _gather(self, conn: GuardedConn) -> None:
        conn.head = bytearray()
        if conn.parser is not None and conn.parser.unreader.buf.tell():
            # Read-ahead the parser holds (a pipelined request) is part of the next head.
            conn.head += conn.parser.unreader.take_buffered()
        conn.needed = 0
        conn.deadline = time.monotonic() + self.limits.header_timeout
        if conn.sock.gettimeout() != 0.0:
            # Straight from a thread (a pipelined request): the event loop must never block.
            conn.sock.setblocking(False)
        self.gathering[conn] = None
        # Mostly the request is there already (the socket was found readable): read it now.
        self._readable(conn)

    def _readable(self, conn: GuardedConn, _sock: Any = None) -> None:
        """Take what has arrived; hand ``conn`` on once it has what it needs."""
        try:
            data = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError:
            data = b""
        if data == b"":
            self._leave(conn)
            self.nr_conns -= 1
            conn.close()
            return
        if data:
            conn.head += data
        if not self._complete(conn) and not conn.watched:
            conn.watched = True
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _leave(self, conn: GuardedConn) -> None:
        """``conn`` leaves the event loop's gathering."""
        if conn.watched:
            conn.watched = False
            self.poller.unregister(conn.sock)
        self.gathering.pop(conn, None)

    def _complete(self, conn: GuardedConn) -> bool:
        """Hand ``conn`` on when what it needs has arrived; True if it left the gathering."""
        if not conn.needed:
            end = conn.head.find(_END)
            if end < 0:
                if len(conn.head) > MAX_HEAD:
                    self._refuse(conn, "431 Request Header Fields Too Large")
                    return True
                return False
            length = _LENGTH.search(conn.head, 0, end)
            size = int(length.group(1)) if length else 0
            if size > SMALL_BODY or _CHUNKED_OR_CONTINUE.search(conn.head, 0, end):
                self._leave(conn)
                self._to_slot(conn)
                return True
            conn.needed = end + len(_END) + size
        if len(conn.head) < conn.needed:
            return False
        self._leave(conn)
        self._dispatch(conn)
        return True

    def _to_slot(self, conn: GuardedConn) -> None:
        if self.slots_busy < self.slots:
            self.slots_busy += 1
            conn.slot = True
            self._dispatch(conn)
        else:
            conn.deadline = time.monotonic() + SLOT_WAIT
            self.slot_queue.append(conn)

    def _dispatch(self, conn: GuardedConn) -> None:
        clock = conn.clock
        if clock is None:
            conn.init()  # the parser; the thread makes the socket blocking (ThreadWorker.handle)
            clock = conn.clock = BodyClock(conn.sock, self.limits)
            conn.parser.unreader.sock = clock
        clock.arm()
        # The parser's buffer was emptied into the head (_gather): the head becomes it.
        conn.parser.unreader.buf = io.BytesIO(conn.head)
        conn.head = bytearray()
        conn.data_ready = True
        conn.ready = True
        self.enqueue_req(conn)

    # Connections out

    def finish_request(self, conn: TConn, fs: Any) -> None:
        if isinstance(conn, GuardedConn):
            self.answering.pop(conn, None)
            if conn.slot:
                self._release_slot(conn)
            if conn.clock is not None and conn.clock.expired:
                self.nr_conns -= 1
                conn.close()
                return
        super().finish_request(conn, fs)

    def _release_slot(self, conn: GuardedConn) -> None:
        conn.slot = False
        self.slots_busy -= 1
        while self.slot_queue and self.slots_busy < self.slots:
            waiting = self.slot_queue.popleft()
            if waiting.closed:
                continue
            self.slots_busy += 1
            waiting.slot = True
            self._dispatch(waiting)

    def forget(self, conn: GuardedConn) -> None:
        """``conn`` closed: its client holds one connection fewer."""
        self.per_client[conn.address] -= 1
        if self.per_client[conn.address] <= 0:
            del self.per_client[conn.address]
        if conn.slot:
            # Closed without finishing (worker stopping): give the slot back.
            self._release_slot(conn)

    def _stalled_readers(self, now: float) -> None:
        """Shut the sockets of clients that took none of their answer for BODY_TIMEOUT.

        The thread sending stays in a plain blocking send (a socket timeout would cost
        every response extra system calls and GIL hand-overs); the event loop looks
        at each answering socket's unsent bytes once a second instead, and a shutdown
        ends the thread's send at once.
        """
        for conn, seen in list(self.answering.items()):
            unsent = _unsent(conn.sock)
            if unsent <= 0 or unsent != seen[0]:
                seen[0], seen[1] = unsent, now
            elif now - seen[1] > self.limits.body_timeout:
                note("send-deadline", conn.address, f"unsent={unsent}")
                del self.answering[conn]
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _refuse(self, conn: GuardedConn, status: str) -> None:
        self._leave(conn)
        self.nr_conns -= 1
        _answer_and_close(conn.sock, status)
        conn.close()

    def murder_pending(self) -> None:
        """Called on every pass of the event loop: once a second, end heads, upload waits
        and answers past their deadlines (a pass per request would cost every request)."""
        super().murder_pending()
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        self._stalled_readers(now)
        for conn in [c for c in self.gathering if c.deadline <= now]:
            note("header-deadline", conn.address, f"bytes={len(conn.head)}")
            self._refuse(conn, "408 Request Timeout")
        while self.slot_queue and (self.slot_queue[0].deadline <= now or self.slot_queue[0].closed):
            conn = self.slot_queue.popleft()
            if not conn.closed:
                note("upload-wait", conn.address)
                self.nr_conns -= 1
                _answer_and_close(conn.sock, "503 Service Unavailable")
                conn.close()


def _unsent(sock: socket.socket) -> int:
    """Bytes written to ``sock`` that its peer has not taken yet (Linux SIOCOUTQ); -1 unknown."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0])
    except (OSError, ValueError):
        return -1


def _answer_and_close(sock: socket.socket, status: str) -> None:
    """A short answer, without blocking, then close."""
    reason = status.split(" ", 1)[1]
    body = f"{reason}\n".encode()
    try:
        sock.setblocking(False)
        sock.send(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: close\r\n\r\n".encode() + body)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
