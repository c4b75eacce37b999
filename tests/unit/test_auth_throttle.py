"""Passcode guessing: throttled per client address, logged and counted; X-Forwarded-For only
when TRUSTED_PROXIES says a proxy sets it."""

from __future__ import annotations

import logging

import pytest

from havarti import metrics as prom
from havarti.web.throttle import BURST, AuthThrottle, client_key
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.webapp import basic_auth, make_webapp

WHEEL = dists.wheel("gruyere", "1.0")
API = f"/api/projects/gruyere/files/{WHEEL.filename}"


def failures(result: str) -> float:
    return prom.metrics().registry.get_sample_value(
        "havarti_auth_failures_total", {"result": result}) or 0.0


def from_address(address: str, **extra: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}, **extra}


def test_token_bucket_empties_refills_and_stays_bounded():
    now = [0.0]
    throttle = AuthThrottle(burst=3, window=30.0, max_clients=100, clock=lambda: now[0])
    assert [throttle.failed("10.0.0.1") for _ in range(3)] == [False, False, True]
    assert throttle.retry_after("10.0.0.1") == 10  # one try earned back every 10 s
    assert throttle.retry_after("10.0.0.2") == 0
    now[0] += 10
    assert throttle.retry_after("10.0.0.1") == 0
    for i in range(1000):
        throttle.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    # An IPv6 client counts by its /64: rotating the low bits buys nothing.
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"


def test_many_wrong_passcodes_are_throttled_and_the_owner_elsewhere_still_gets_in(
        tmp_path, upstream: FakeIndex, caplog):
    web = make_webapp(tmp_path / "data", upstream.url)
    web.upload(WHEEL)
    wrong_before, throttled_before = failures("wrong_passcode"), failures("throttled")
    attacker = from_address("203.0.113.9")
    with caplog.at_level(logging.WARNING, logger="havarti.web.auth"):
        statuses = [web.client.post(f"{API}/yank", headers=basic_auth(f"guess-{i}"),
                                    **attacker).status_code for i in range(3 * BURST)]
    assert statuses[:BURST] == [401] * BURST
    assert set(statuses[BURST:]) == {429}
    refused = web.client.post(f"{API}/yank", headers=basic_auth("another"), **attacker)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "too many wrong passcodes" in refused.get_data(as_text=True)
    # While throttled, even the right passcode is refused from there: guessing tells nothing.
    assert web.client.post(f"{API}/unyank", headers=web.auth, **attacker).status_code == 429
    # Uploads and READ_AUTH share the throttle (one passcode).
    assert web.client.post("/", headers=basic_auth("x"), **attacker).status_code == 429
    # The owner, from another address, is not affected.
    owner = web.client.post(f"{API}/yank", json={"reason": "fine"}, headers=web.auth,
                            **from_address("198.51.100.7"))
    assert owner.status_code == 200

    logged = [r.getMessage() for r in caplog.records if "auth-failed" in r.getMessage()]
    assert len(logged) == BURST
    assert all("remote=203.0.113.9" in line for line in logged)
    assert "throttled=true" in logged[-1]
    assert failures("wrong_passcode") - wrong_before == BURST
    assert failures("throttled") - throttled_before == 2 * BURST + 3


def test_x_forwarded_for_is_ignored_unless_proxies_are_trusted(tmp_path, upstream: FakeIndex):
    web = make_webapp(tmp_path / "direct", upstream.url)
    # Rotating X-Forwarded-For does not give a direct client new buckets.
    statuses = [web.client.get("/api/projects/gruyere/audit", headers={
        **basic_auth("wrong"), "X-Forwarded-For": f"192.0.2.{i}"}).status_code
        for i in range(BURST + 2)]
    assert statuses[-1] == 429


def test_behind_trusted_proxies_the_forwarded_address_counts(tmp_path, upstream: FakeIndex):
    web = make_webapp(tmp_path / "heroku", upstream.url, TRUSTED_PROXIES="1")
    web.upload(WHEEL)
    router = from_address("10.0.0.1")  # Heroku's router: every request comes from it
    for _ in range(BURST + 1):
        last = web.client.get("/api/projects/gruyere/audit", headers={
            **basic_auth("wrong"), "X-Forwarded-For": "203.0.113.9"}, **router)
    assert last.status_code == 429
    # A client cannot pick its own address: the router appends the one it saw, and that counts.
    spoofed = web.client.get("/api/projects/gruyere/audit", headers={
        **basic_auth("wrong"), "X-Forwarded-For": "198.51.100.7, 203.0.113.9"}, **router)
    assert spoofed.status_code == 429
    owner = web.client.post(f"{API}/yank", json={}, headers={
        **web.auth, "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}, **router)
    assert owner.status_code == 200
    assert web.index.audit_log("gruyere")[0].remote_addr == "198.51.100.7"
    bad = web.client.get("/api/projects/gruyere/audit", headers={
        **web.auth, "X-Forwarded-For": "not-an-address"}, **router)
    assert bad.status_code == 400


@pytest.mark.parametrize("value", ["0", "3"])
def test_trusted_proxies_setting(value):
    from havarti.config import load_settings

    assert load_settings({"TRUSTED_PROXIES": value}).trusted_proxies == int(value)
