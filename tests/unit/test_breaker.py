"""The circuit breaker: open after consecutive failures, one probe after the wait."""

from __future__ import annotations

import pytest

from havarti.errors import UpstreamError
from havarti.upstream.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_fails_fast():
    clock = Clock()
    breaker = CircuitBreaker(3, 30, clock=clock)
    for _ in range(2):
        breaker.before()
        breaker.failure()
    assert breaker.state == "closed"
    breaker.before()
    breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(UpstreamError, match="circuit open"):
        breaker.before()


def test_a_success_resets_the_count():
    breaker = CircuitBreaker(2, 30, clock=Clock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"


def test_half_open_lets_one_probe_through_and_its_success_closes():
    clock = Clock()
    breaker = CircuitBreaker(1, 30, clock=clock)
    breaker.failure()
    clock.now = 31
    breaker.before()  # the probe
    with pytest.raises(UpstreamError):
        breaker.before()  # everyone else still fails fast while the probe runs
    breaker.success()
    assert breaker.state == "closed"
    breaker.before()


def test_a_failed_probe_opens_it_again_for_longer():
    clock = Clock()
    breaker = CircuitBreaker(1, 30, max_seconds=100, clock=clock)
    breaker.failure()
    clock.now = 31
    breaker.before()
    breaker.failure()
    clock.now = 31 + 59
    with pytest.raises(UpstreamError):
        breaker.before()
    clock.now = 31 + 61
    breaker.before()  # the next probe, after twice the wait


def test_zero_failures_never_opens():
    breaker = CircuitBreaker(0, 30, clock=Clock())
    for _ in range(100):
        breaker.failure()
    breaker.before()
