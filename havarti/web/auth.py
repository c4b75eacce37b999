"""Credentials: the passcode or an API token, as the basic-auth password (any username)
or ``Authorization: Bearer``.

The passcode is compared in constant time and counts as admin; a token is
looked up by its hash on every request (:mod:`havarti.db.tokens`), so a
revoked one is refused at once by every process. Wrong credentials are
throttled per client address (:mod:`havarti.web.throttle`), logged
(``auth-failed``) and counted (``havarti_auth_failures_total``); every other
refusal is logged by :mod:`havarti.web.errors` (``access-refused``).
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime

from flask import Request, current_app
from werkzeug.exceptions import TooManyRequests

from havarti import metrics as prom
from havarti.config import Settings
from havarti.domain.access import PASSCODE, Principal, looks_like_token, principal_of
from havarti.errors import Forbidden, Unauthorized
from havarti.web import context
from havarti.web.throttle import AuthThrottle

log = logging.getLogger(__name__)

WRONG = "wrong or missing passcode or token (basic-auth password, or Authorization: Bearer)"


class Throttled(TooManyRequests):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many wrong passcodes from this address; try again in "
                         f"{retry_after} s", retry_after=retry_after)


def throttle() -> AuthThrottle:
    """This app's (and process's) failed-passcode buckets."""
    found = current_app.extensions.get("havarti_auth_throttle")
    if found is None:
        found = current_app.extensions.setdefault("havarti_auth_throttle", AuthThrottle())
    return found


def credential(request: Request) -> str | None:
    """The secret the request carries: a basic-auth password or a bearer token."""
    auth = request.authorization
    if auth is None:
        return None
    if auth.type == "basic":
        return auth.password or None
    if auth.type == "bearer":
        return auth.token or None
    return None


def authenticate(request: Request, settings: Settings, action: str) -> Principal:
    """Who the request acts as; it wants to ``action`` (for the refusal's wording).

    Raises Unauthorized (401: none, wrong, unknown, expired or revoked),
    Forbidden (403: no PASSCODE set and no token given, so nothing can be
    accepted) or :class:`Throttled` (429) while the client's address is
    throttled, whatever it sends.
    """
    secret = credential(request)
    if secret is None or not (settings.passcode or looks_like_token(secret)):
        if not settings.passcode:
            raise Forbidden(f"{action} is disabled: set the PASSCODE environment variable or "
                            "send a token (havarti token create)")
        raise Unauthorized(WRONG)
    buckets = throttle()
    remote = request.remote_addr
    wait = buckets.retry_after(remote)
    if wait:
        prom.metrics().auth_failures.labels("throttled").inc()
        raise Throttled(wait)
    if settings.passcode and hmac.compare_digest(secret.encode("utf-8", "surrogateescape"),
                                                 settings.passcode.encode("utf-8", "surrogateescape")):
        return PASSCODE
    if looks_like_token(secret):
        index = context.index()
        record = index.token(secret)
        if record is not None:
            now = datetime.now(UTC)
            refusal = record.refusal(now)
            if refusal is not None:
                # A real token that no longer works is no guess: not throttled.
                raise Unauthorized(refusal)
            index.tokens.touch(record, now)
            return principal_of(record)
    emptied = buckets.failed(remote)
    prom.metrics().auth_failures.labels("wrong_passcode").inc()
    log.warning("auth-failed remote=%s method=%s path=%s%s", remote or "-", request.method,
                request.path, " throttled=true" if emptied else "")
    raise Unauthorized(WRONG)


def require(request: Request, scope: str, action: str) -> Principal:
    """The request's principal if its scope allows ``action``; else Unauthorized / Forbidden."""
    found = authenticate(request, context.settings(), action)
    found.require(scope, action)
    return found
