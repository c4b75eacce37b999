"""Tokens across web processes: two gunicorn masters (two workers each) on one Postgres."""

from __future__ import annotations

import httpx
import pytest

from tests.support.topology import Topology

pytestmark = pytest.mark.services

PASSCODE = "access-passcode"


def test_a_revoked_token_is_refused_at_once_by_every_web_process(topology: Topology) -> None:
    topology.env.update({"PASSCODE": PASSCODE, "READ_AUTH": "true"})
    first, second = topology.start(topology.web, topology.web)
    created = httpx.post(f"{first.url}/api/tokens", json={"scope": "read"},
                         auth=("admin", PASSCODE), timeout=10)
    assert created.status_code == 201, created.text
    secret, token_id = created.json()["token"], created.json()["id"]

    # Made in one process, accepted by every worker of both masters (keep-alive off: each
    # request may land on either worker).
    for web in (first, second):
        for _ in range(8):
            answer = httpx.get(web.index_url, auth=("ci", secret), timeout=10)
            assert answer.status_code == 200, answer.text

    revoked = httpx.delete(f"{second.url}/api/tokens/{token_id}", auth=("admin", PASSCODE),
                           timeout=10)
    assert revoked.status_code == 200 and revoked.json()["revoked"]
    # No request after the revocation is served, in either master or any of its workers.
    for web in (first, second):
        for _ in range(8):
            answer = httpx.get(web.index_url, headers={"Authorization": f"Bearer {secret}"},
                               timeout=10)
            assert answer.status_code == 401, answer.text
            assert f"token {token_id} was revoked" in answer.text
    assert "access-refused status=401" in topology.logs()
