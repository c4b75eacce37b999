"""Administration, admin scope only: tokens, reserved names and policies, as a JSON API
(``/api/tokens``, ``/api/reserved``, ``/api/policies``) and one page (``/admin/``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from havarti.config import ConfigError, parse_duration
from havarti.domain.access import NewToken
from havarti.domain.policy import Rule, requirement
from havarti.errors import InvalidRequest
from havarti.records import Reservation
from havarti.web import context
from havarti.web.auth import require
from havarti.web.manage import json_object

bp = Blueprint("admin", __name__)


def _admin(action: str = "administer this index") -> None:
    require(request, "admin", action)


def _duration(raw: Any) -> timedelta | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise InvalidRequest('expires must be a duration string such as "90d"')
    try:
        return parse_duration("expires", raw)
    except ConfigError as exc:
        raise InvalidRequest(str(exc)) from None


def _strings(body: dict, key: str) -> list[str]:
    value = body.get(key) or []
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{key} must be a list of strings")
    return value


def _string(body: dict, key: str) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a string")
    return value


def _new_token(body: dict) -> NewToken:
    return NewToken.checked(_string(body, "scope"), _strings(body, "projects"),
                            _duration(body.get("expires")), _string(body, "note"))


# The JSON API.

@bp.get("/api/tokens")
def api_tokens() -> Response:
    _admin("list tokens")
    return jsonify({"tokens": [t.as_json() for t in context.index().tokens.list()]})


@bp.post("/api/tokens")
def api_create_token() -> tuple[Response, int]:
    _admin("create tokens")
    new = _new_token(json_object('{"scope": "upload", "projects": ["acme-*"], "expires": "90d"}'))
    secret, record = context.index().issue_token(new, request.remote_addr)
    # The secret is in this answer only: it is never stored.
    return jsonify({**record.as_json(), "token": secret}), 201


@bp.delete("/api/tokens/<int:token_id>")
def api_revoke_token(token_id: int) -> Response:
    _admin("revoke tokens")
    return jsonify(context.index().tokens.revoke(token_id, request.remote_addr).as_json())


@bp.get("/api/reserved")
def api_reserved() -> Response:
    _admin("list reserved names")
    return jsonify(_reserved_json())


def _reserved_json() -> dict:
    index = context.index()
    return {"configured": list(index.settings.reserved_names),
            "reserved": [r.as_json() for r in index.policies.reservations()]}


@bp.post("/api/reserved")
def api_reserve() -> tuple[Response, int]:
    _admin("reserve names")
    body = json_object('{"pattern": "acme-*", "note": "our namespace"}')
    reservation = _reserve(_string(body, "pattern"), _string(body, "note"))
    return jsonify(reservation.as_json()), 201


def _reserve(pattern: str, note: str) -> Reservation:
    return context.index().reserve(pattern, note, request.remote_addr)


@bp.delete("/api/reserved/<int:reservation_id>")
def api_unreserve(reservation_id: int) -> Response:
    _admin("release reserved names")
    return jsonify(context.index().unreserve(reservation_id, request.remote_addr).as_json())


@bp.get("/api/policies")
def api_policies() -> Response:
    _admin("list policies")
    return jsonify({"rules": [r.as_json() for r in context.index().policy(fresh=True).rules]})


@bp.post("/api/policies")
def api_add_policy() -> tuple[Response, int]:
    _admin("change policies")
    body = json_object('{"action": "deny", "match": "urllib3<1.26.5", "reason": "CVE-2021-33503"}')
    rule = _add_rule(_string(body, "action"), _string(body, "match"), _string(body, "filename"),
                     _string(body, "reason"))
    return jsonify(rule.as_json()), 201


def _add_rule(action: str, match: str, filename: str, reason: str) -> Rule:
    return context.index().add_rule(Rule.parse(action, match, filename, reason),
                                    request.remote_addr)


@bp.delete("/api/policies/<int:rule_id>")
def api_remove_policy(rule_id: int) -> Response:
    _admin("change policies")
    return jsonify(context.index().remove_rule(rule_id, request.remote_addr).as_json())


@bp.get("/api/policies/check")
def api_check_policy() -> Response:
    """``?requirement=urllib3==1.26.0`` (repeatable): which the policy would block, and why."""
    _admin("check requirements")
    policy = context.index().policy(fresh=True)
    found = {}
    for text in request.args.getlist("requirement"):
        found[text] = policy.check(requirement(text))
    return jsonify({"blocked": {k: v for k, v in found.items() if v},
                    "allowed": [k for k, v in found.items() if not v]})


# The page.

def _page(created: dict | None = None) -> str:
    index = context.index()
    return render_template("admin.html", tokens=index.tokens.list(), created=created,
                           configured_reserved=index.settings.reserved_names,
                           reservations=index.policies.reservations(),
                           rules=index.policy(fresh=True).rules)


@bp.get("/admin/")
def page() -> str:
    _admin("open the admin page")
    return _page()


@bp.post("/admin/tokens")
def form_create_token() -> str:
    # Cross-site posts were refused before (havarti.web.guard).
    _admin("create tokens")
    form = request.form
    new = _new_token({"scope": form.get("scope", ""), "projects": form.get("projects", ""),
                      "expires": form.get("expires", ""), "note": form.get("note", "")})
    secret, record = context.index().issue_token(new, request.remote_addr)
    return _page(created={"id": record.id, "token": secret})


@bp.post("/admin/tokens/<int:token_id>/revoke")
def form_revoke_token(token_id: int) -> Response:
    _admin("revoke tokens")
    context.index().tokens.revoke(token_id, request.remote_addr)
    return redirect(url_for("admin.page"), code=303)


@bp.post("/admin/reserved")
def form_reserve() -> Response:
    _admin("reserve names")
    _reserve(request.form.get("pattern", ""), request.form.get("note", ""))
    return redirect(url_for("admin.page") + "#reserved-title", code=303)


@bp.post("/admin/reserved/<int:reservation_id>/remove")
def form_unreserve(reservation_id: int) -> Response:
    _admin("release reserved names")
    context.index().unreserve(reservation_id, request.remote_addr)
    return redirect(url_for("admin.page") + "#reserved-title", code=303)


@bp.post("/admin/policies")
def form_add_policy() -> Response:
    _admin("change policies")
    form = request.form
    _add_rule(form.get("action", ""), form.get("match", ""), form.get("filename", ""),
              form.get("reason", ""))
    return redirect(url_for("admin.page") + "#policies-title", code=303)


@bp.post("/admin/policies/<int:rule_id>/remove")
def form_remove_policy(rule_id: int) -> Response:
    _admin("change policies")
    context.index().remove_rule(rule_id, request.remote_addr)
    return redirect(url_for("admin.page") + "#policies-title", code=303)


@bp.after_request
def never_stored(response: Response) -> Response:
    # A new token's secret is on these pages: no cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response
