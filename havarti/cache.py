"""The one in-memory cache type: least recently used out, bounded in bytes and entries.

Every per-process cache in front of a page (the mirror's upstream states, the
rendered pages, the hot-page replay) is one of these, and they share one
invalidation rule: a key names the content it maps to (a project's serial, an
upstream page's content digest), so a change makes a new key and nothing is
ever invalidated by hand; old entries age out. An optional ``ttl`` only bounds
how long an entry may be replayed (the hot-page cache).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A thread-safe LRU map holding at most ``max_bytes`` (as ``weigh`` counts) and ``max_entries``.

    An entry heavier than the whole budget is not kept at all: one huge page
    must not evict everything else.
    """

    def __init__(self, max_bytes: int, weigh: Callable[[V], int], max_entries: int = 100_000,
                 ttl: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.ttl = ttl
        self._weigh = weigh
        self._clock = clock
        self._entries: OrderedDict[K, tuple[V, int, float]] = OrderedDict()
        self._bytes = 0
        self._guard = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._guard:
            item = self._entries.get(key)
            if item is None:
                return None
            if self.ttl is not None and item[2] <= self._clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V) -> V:
        weight = self._weigh(value)
        expires = self._clock() + self.ttl if self.ttl is not None else 0.0
        with self._guard:
            self._drop(key)
            if weight <= self.max_bytes:
                self._entries[key] = (value, weight, expires)
                self._bytes += weight
                while self._bytes > self.max_bytes or len(self._entries) > self.max_entries:
                    self._drop(next(iter(self._entries)))
        return value

    def pop(self, key: K) -> None:
        with self._guard:
            self._drop(key)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: K) -> None:
        item = self._entries.pop(key, None)
        if item is not None:
            self._bytes -= item[1]

    @property
    def size(self) -> int:
        """Bytes held, as ``weigh`` counts them."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
