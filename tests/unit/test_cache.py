"""The one bounded cache type: least recently used out, within bytes and entries."""

from __future__ import annotations

from havarti.cache import BoundedCache


def test_evicts_least_recently_used_past_the_byte_budget():
    cache: BoundedCache[str, bytes] = BoundedCache(10, len)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # a is now the most recently used
    cache.put("c", b"cccc")
    assert cache.get("b") is None
    assert cache.get("a") == b"aaaa" and cache.get("c") == b"cccc"
    assert cache.size == 8


def test_an_entry_over_the_whole_budget_is_not_kept_and_evicts_nothing():
    cache: BoundedCache[str, bytes] = BoundedCache(10, len)
    cache.put("small", b"x")
    cache.put("huge", b"y" * 11)
    assert cache.get("huge") is None
    assert cache.get("small") == b"x"


def test_replacing_a_key_counts_its_bytes_once():
    cache: BoundedCache[str, bytes] = BoundedCache(10, len)
    for _ in range(5):
        cache.put("k", b"12345")
    assert cache.size == 5 and len(cache) == 1


def test_entries_bound_and_ttl():
    now = [0.0]
    cache: BoundedCache[int, int] = BoundedCache(1000, lambda _: 1, max_entries=3, ttl=5,
                                                 clock=lambda: now[0])
    for i in range(5):
        cache.put(i, i)
    assert len(cache) == 3 and cache.get(0) is None and cache.get(4) == 4
    now[0] = 6
    assert cache.get(4) is None
