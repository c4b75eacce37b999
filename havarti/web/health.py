"""Operations endpoints: liveness and readiness (always open, even with READ_AUTH)."""

from __future__ import annotations

import logging
import threading
import time

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from havarti.checks import CHECKS
from havarti.config import Settings
from havarti.errors import no_space
from havarti.web import context

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

#: A load balancer may probe every second: each check's answer is reused this long.
READY_SECONDS = 5.0
_answers: dict[tuple[str, Settings], tuple[float, bool, str]] = {}
_guard = threading.Lock()


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready() -> Response:
    settings = context.settings()
    results = {}
    for name, check in CHECKS.items():
        ok, detail = _answer((name, settings), lambda check=check: check(settings))  # type: ignore[misc]
        # The backend's own description names its bucket, endpoint or folder: not for anyone.
        results[name] = {"ok": ok, "detail": settings.storage if ok and name == "storage" else detail}
    breaker = context.index().upstream.breaker.state
    if breaker != "closed":
        results["upstream"] = {"ok": False, "detail": f"circuit breaker {breaker}"}
    ok = all(r["ok"] for r in results.values())
    response = jsonify({"status": "ok" if ok else "failing", "checks": results})
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _answer(key: tuple[str, Settings], check: object) -> tuple[bool, str]:
    """The check's answer, reused for READY_SECONDS; a failure says its kind, the log says more."""
    now = time.monotonic()
    with _guard:
        cached = _answers.get(key)
    if cached is not None and now - cached[0] < READY_SECONDS:
        return cached[1], cached[2]
    try:
        answer = (True, check())  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 -- every backend raises its own types
        # The message may hold paths or hosts: anyone may read /ready, so it goes to the log.
        log.warning("ready-failed check=%s error=%s", key[0], str(exc).splitlines()[0] if str(exc)
                    else type(exc).__name__)
        # A full disk is named: what to do about it is clear, and it holds no path.
        answer = (False, f"failing ({'no space left on device' if no_space(exc) else type(exc).__name__})")
    with _guard:
        _answers[key] = (now, *answer)
    return answer
