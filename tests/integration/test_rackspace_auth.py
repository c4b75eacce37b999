"""Rackspace Cloud Files login: API key to identity v2.0, the region's endpoint, a new
token when Swift refuses the old one (it expired) or when the old one runs out.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pytest

from havarti.storage import StorageError
from havarti.storage.swift import SharedAuth
from tests.support.cloud import (
    RackspaceIdentity,
    backend_env,
    empty_and_remove,
    storage_for,
    swift_settings,
)


@pytest.fixture
def rackspace(rackspace_identity: RackspaceIdentity) -> Iterator[dict[str, str]]:
    env = backend_env("rackspacestorage", swift_settings(), rackspace_identity)
    storage_for(env).ensure_ready()
    yield env
    empty_and_remove(env)


def test_a_refused_token_is_renewed_and_the_request_retried(rackspace_identity, rackspace):
    rackspace_identity.expire_next = True  # the next login hands out a token Swift refuses
    storage = storage_for(rackspace)
    before = rackspace_identity.logins
    storage.write("k/one.whl", io.BytesIO(b"payload"))
    assert storage.read_bytes("k/one.whl") == b"payload"
    assert rackspace_identity.logins == before + 2  # the refused token, then a good one

    # Every thread's connection shares the good token: no login per request.
    storage.exists("k/one.whl")
    assert rackspace_identity.logins == before + 2


def test_the_configured_region_is_used(rackspace_identity, rackspace):
    # ORD is in the catalog too, at an address nothing listens on.
    storage = storage_for({**rackspace, "RACKSPACE_REGION": "ORD"})
    with pytest.raises(StorageError, match="cannot reach"):
        storage.check()
    dfw = storage_for(rackspace)
    assert dfw.check().startswith("rackspacestorage container")
    assert storage.auth.storage_url != dfw.auth.storage_url  # type: ignore[attr-defined]


def test_a_token_past_its_expiry_is_renewed_before_use():
    logins: list[float] = []

    def login() -> tuple[str, str, float | None]:
        logins.append(time.time())
        # Expires within the safety margin: every use must log in afresh.
        return "http://storage.invalid/v1/AUTH_x", f"token-{len(logins)}", time.time() + 10

    auth = SharedAuth(login, "test")
    assert auth.get()[1] == "token-1"
    assert auth.get()[1] == "token-2"

    lasting: list[int] = []

    def long_login() -> tuple[str, str, float | None]:
        lasting.append(1)
        return "http://storage.invalid/v1/AUTH_x", f"token-{len(lasting)}", time.time() + 86400

    auth = SharedAuth(long_login, "test")
    assert auth.get()[1] == auth.get()[1] == "token-1"
    assert auth.get(refused="token-1")[1] == "token-2"
