"""Operations endpoints: liveness and readiness (always open, even with READ_AUTH)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from havarti.checks import CHECKS
from havarti.config import Settings
from havarti.errors import no_space
from havarti.jobs.base import START_A_WORKER, WORKER_PING_TIMEOUT
from havarti.web import context

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

#: A load balancer may probe every second: each check's answer is reused this long.
READY_SECONDS = 5.0
_answers: dict[tuple[str, Settings], tuple[float, bool, Any]] = {}
#: Answers being refreshed in the background (counting workers always takes its timeout).
_refreshing: set[tuple[str, Settings]] = set()
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
    results["workers"] = _workers(settings)
    ok = all(r["ok"] for r in results.values())
    body: dict[str, Any] = {"status": "ok" if ok else "failing", "checks": results}
    # Warnings leave the status alone: serving works, some background work does not.
    warnings = [f"{name}: {r['warning']}" for name, r in results.items() if "warning" in r]
    if warnings:
        body["warnings"] = warnings
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _workers(settings: Settings) -> dict[str, Any]:
    """Downloaders taking jobs: none is a warning, never a failure (pages and files are
    still served); the count is refreshed in the background, so /ready never waits for it
    but the first time."""
    jobs = context.index().jobs
    if jobs is None:
        return {"ok": True, "detail": "no job runner"}
    ok, count = _answer(("workers", settings), lambda: jobs.workers(WORKER_PING_TIMEOUT),
                        background=True)
    if not ok:
        return {"ok": True, "workers": None, "warning": f"unknown, {count}"}
    if count is None:
        return {"ok": True, "detail": "none needed (jobs run in-process)"}
    if count == 0:
        return {"ok": True, "workers": 0, "warning": f"no worker is taking jobs: {START_A_WORKER}"}
    return {"ok": True, "workers": count}


def _answer(key: tuple[str, Settings], check: Callable[[], Any],
            background: bool = False) -> tuple[bool, Any]:
    """The check's answer, reused for READY_SECONDS; a failure says its kind, the log says more.

    ``background``: an outdated answer is returned at once while a thread asks again.
    """
    now = time.monotonic()
    with _guard:
        cached = _answers.get(key)
        if cached is not None and now - cached[0] >= READY_SECONDS and background:
            if key not in _refreshing:
                _refreshing.add(key)
                threading.Thread(target=_refresh, args=(key, check), daemon=True,
                                 name="havarti-ready").start()
            return cached[1], cached[2]
    if cached is not None and now - cached[0] < READY_SECONDS:
        return cached[1], cached[2]
    answer = _ask(key[0], check)
    with _guard:
        _answers[key] = (now, *answer)
    return answer


def _refresh(key: tuple[str, Settings], check: Callable[[], Any]) -> None:
    answer = _ask(key[0], check)
    with _guard:
        _answers[key] = (time.monotonic(), *answer)
        _refreshing.discard(key)


def _ask(name: str, check: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, check()
    except Exception as exc:  # noqa: BLE001 -- every backend raises its own types
        # The message may hold paths or hosts: anyone may read /ready, so it goes to the log.
        log.warning("ready-failed check=%s error=%s", name, str(exc).splitlines()[0] if str(exc)
                    else type(exc).__name__)
        # A full disk is named: what to do about it is clear, and it holds no path.
        return False, f"failing ({'no space left on device' if no_space(exc) else type(exc).__name__})"
