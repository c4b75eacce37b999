"""Operations endpoints: liveness and readiness (always open, even with READ_AUTH)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from havarti.checks import CHECKS
from havarti.web import context

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready() -> Response:
    settings = context.settings()
    results = {}
    ok = True
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check(settings)}
        except Exception as exc:  # noqa: BLE001 -- every backend raises its own types
            ok = False
            results[name] = {"ok": False, "detail": str(exc).splitlines()[0] if str(exc) else
                             type(exc).__name__}
    response = jsonify({"status": "ok" if ok else "failing", "checks": results})
    response.status_code = 200 if ok else 503
    return response
