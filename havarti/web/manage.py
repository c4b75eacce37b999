"""Yank, unyank and delete private files, behind the passcode: HTML forms and a JSON API."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

from havarti.distributions import normalized, parse_dist_filename
from havarti.errors import InvalidUpload
from havarti.web import context
from havarti.web.auth import passcode_ok
from havarti.web.errors import one_line, unauthorized

bp = Blueprint("manage", __name__)


def _refusal() -> Response | None:
    """Why this request may not change anything, or None."""
    settings = context.settings()
    if not settings.passcode:
        return one_line(403, "managing packages is disabled: set the PASSCODE environment "
                             "variable to enable it")
    if not passcode_ok(request, settings.passcode):
        return unauthorized("wrong or missing passcode (basic-auth password)")
    return None


# The HTML forms (project and file pages): answer with the page that shows the change.

@bp.post("/projects/<name>/files/<filename>/<action>")
def form_action(name: str, filename: str, action: str) -> Response:
    if action not in ("yank", "unyank", "delete"):
        return one_line(404, f"no action {action!r}; use yank, unyank or delete")
    # Cross-site posts were refused before (havarti.web.guard): a browser re-sends
    # basic-auth credentials on any site's form post.
    refused = _refusal()
    if refused is not None:
        return refused
    index = context.index()
    if action == "yank":
        index.yank(name, filename, request.form.get("reason", ""), request.remote_addr)
    elif action == "unyank":
        index.unyank(name, filename, request.remote_addr)
    else:
        index.delete(name, filename, request.remote_addr)
        return redirect(url_for("ui.project", name=normalized(name)), code=303)
    # The project page that shows the file's version: a project may have many pages.
    try:
        version: str | None = parse_dist_filename(filename).version
    except InvalidUpload:
        version = None
    return redirect(url_for("ui.project", name=normalized(name), version=version) + "#" + filename,
                    code=303)


# The JSON API.

#: Largest JSON body the API reads (a reason is at most 500 characters).
MAX_JSON_BODY = 64 * 1024


def _reason() -> str | Response:
    """The yank reason from the JSON body (its type was checked by havarti.web.guard)."""
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        return one_line(413, f"the body is larger than {MAX_JSON_BODY} bytes")
    data = request.stream.read(MAX_JSON_BODY + 1)
    if len(data) > MAX_JSON_BODY:
        return one_line(413, f"the body is larger than {MAX_JSON_BODY} bytes")
    if not data.strip():
        return ""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return one_line(400, 'the body must be a JSON object, e.g. {"reason": "broken build"}')
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        return one_line(400, "reason must be a string")
    return reason


@bp.post("/api/projects/<name>/files/<filename>/yank")
def api_yank(name: str, filename: str) -> Response:
    refused = _refusal()
    if refused is not None:
        return refused
    reason = _reason()
    if isinstance(reason, Response):
        return reason
    state = context.index().yank(name, filename, reason, request.remote_addr)
    return jsonify(state.as_json())


@bp.post("/api/projects/<name>/files/<filename>/unyank")
def api_unyank(name: str, filename: str) -> Response:
    refused = _refusal()
    if refused is not None:
        return refused
    return jsonify(context.index().unyank(name, filename, request.remote_addr).as_json())


@bp.delete("/api/projects/<name>/files/<filename>")
def api_delete(name: str, filename: str) -> Response:
    refused = _refusal()
    if refused is not None:
        return refused
    index = context.index()
    state = index.delete(name, filename, request.remote_addr)
    return jsonify(state.as_json())


@bp.get("/api/projects/<name>/audit")
def api_audit(name: str) -> Response:
    refused = _refusal()
    if refused is not None:
        return refused
    entries = context.index().audit_log(name)
    return jsonify({"project": normalized(name), "changes": [
        {"time": e.time.isoformat(), "remote_addr": e.remote_addr, "action": e.action,
         "filename": e.filename, "detail": e.detail} for e in entries]})
