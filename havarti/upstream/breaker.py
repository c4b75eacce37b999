"""A circuit breaker for the upstream index, per process.

When upstream hangs or fails, every page request would otherwise pay the full
UPSTREAM_TIMEOUT before falling back to the stored page. After
``failures`` consecutive failures the breaker opens: calls fail at once for
``reset_seconds``. Then one call goes through as a probe (half-open): its
success closes the breaker, its failure opens it again for twice as long (up
to ``max_seconds``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from havarti.errors import UpstreamError


class CircuitBreaker:
    """Counts consecutive upstream failures; raises UpstreamError at once while open."""

    def __init__(self, failures: int, reset_seconds: float, max_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.reset_seconds = reset_seconds
        self.max_seconds = max(max_seconds, reset_seconds)
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._open_for = reset_seconds
        self._probing = False
        self._guard = threading.Lock()

    @property
    def state(self) -> str:
        """"closed", "open" or "half-open", for /ready and logs."""
        with self._guard:
            if self._open_until is None:
                return "closed"
            return "half-open" if self._probing or self._clock() >= self._open_until else "open"

    def before(self) -> None:
        """Raise UpstreamError while open; let one probe through once the wait is over."""
        if self.threshold <= 0:
            return
        with self._guard:
            if self._open_until is None:
                return
            now = self._clock()
            if now >= self._open_until and not self._probing:
                self._probing = True
                return
            retry = max(0.0, self._open_until - now)
        raise UpstreamError(f"upstream unavailable: {self.threshold} failures in a row; "
                            f"next try in {retry:.0f} s (circuit open)")

    def success(self) -> None:
        with self._guard:
            self._failures = 0
            self._open_until = None
            self._open_for = self.reset_seconds
            self._probing = False

    def failure(self) -> None:
        if self.threshold <= 0:
            return
        with self._guard:
            self._failures += 1
            if self._probing:
                # The probe failed: stay open, and wait longer before the next one.
                self._open_for = min(self._open_for * 2, self.max_seconds)
            elif self._failures < self.threshold:
                return
            self._probing = False
            self._open_until = self._clock() + self._open_for
