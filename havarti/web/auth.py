"""The passcode: basic-auth password (any username), compared in constant time.

Wrong passcodes are throttled per client address (:mod:`havarti.web.throttle`),
and each one is logged (``auth-failed``) and counted
(``havarti_auth_failures_total``).
"""

from __future__ import annotations

import hmac
import logging

from flask import Request, current_app
from werkzeug.exceptions import TooManyRequests

from havarti import metrics as prom
from havarti.web.throttle import AuthThrottle

log = logging.getLogger(__name__)


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


def passcode_ok(request: Request, passcode: str | None) -> bool:
    """True for the right passcode; False for none or a wrong one.

    Raises :class:`Throttled` (429) while the client's address is throttled,
    whatever passcode it sends.
    """
    if not passcode:
        return False
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.password is None:
        return False
    buckets = throttle()
    remote = request.remote_addr
    wait = buckets.retry_after(remote)
    if wait:
        prom.metrics().auth_failures.labels("throttled").inc()
        raise Throttled(wait)
    if hmac.compare_digest(auth.password.encode("utf-8", "surrogateescape"),
                           passcode.encode("utf-8", "surrogateescape")):
        return True
    emptied = buckets.failed(remote)
    prom.metrics().auth_failures.labels("wrong_passcode").inc()
    log.warning("auth-failed remote=%s method=%s path=%s%s", remote or "-", request.method,
                request.path, " throttled=true" if emptied else "")
    return False
