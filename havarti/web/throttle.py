"""Failed-passcode throttling: a token bucket per client address, in bounded memory.

Each address may get the passcode wrong ``burst`` times at once; after that it
earns one more try every ``window / burst`` seconds. While its bucket is empty
every passcode it sends, the right one too, is answered 429 with
``Retry-After`` (were the right one let through, guessing at full speed would
still tell an attacker when it hit). Other addresses are not affected: the
owner, from elsewhere, still gets in.

IPv6 addresses count by their /64 network, which one client usually holds
whole. At most ``max_clients`` addresses are remembered, least recently failed
dropped first. Each web process keeps its own buckets.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

#: Wrong passcodes one address may send at once, and the time it takes to earn them all back.
BURST = 10
WINDOW = 60.0
MAX_CLIENTS = 10_000


def client_key(address: str | None) -> str:
    """The bucket an address counts in: itself (IPv4), its /64 network (IPv6)."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6 and getattr(ip, "ipv4_mapped", None) is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


class AuthThrottle:
    def __init__(self, burst: int = BURST, window: float = WINDOW,
                 max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = float(burst)
        self.rate = burst / window  # tokens earned back per second
        self.max_clients = max_clients
        self.clock = clock
        # address -> (tokens, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._guard = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return self.burst
        tokens, then = entry
        return min(self.burst, tokens + (now - then) * self.rate)

    def retry_after(self, address: str | None) -> int:
        """Seconds until ``address`` may try a passcode again; 0 when it may now."""
        key = client_key(address)
        with self._guard:
            tokens = self._tokens(key, self.clock())
        if tokens >= 1:
            return 0
        return max(1, math.ceil((1 - tokens) / self.rate))

    def failed(self, address: str | None) -> bool:
        """Count a wrong passcode from ``address``; True when that emptied its bucket."""
        key = client_key(address)
        now = self.clock()
        with self._guard:
            tokens = max(0.0, self._tokens(key, now) - 1)
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return tokens < 1

    def __len__(self) -> int:
        return len(self._buckets)
