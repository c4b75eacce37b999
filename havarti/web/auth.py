"""The passcode: basic-auth password (any username), compared in constant time."""

from __future__ import annotations

import hmac

from flask import Request


def passcode_ok(request: Request, passcode: str | None) -> bool:
    if not passcode:
        return False
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.password is None:
        return False
    return hmac.compare_digest(auth.password.encode(), passcode.encode())
