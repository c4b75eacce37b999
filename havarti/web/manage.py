"""Behind the passcode, as HTML forms and a JSON API: yank, unyank and delete private
files; merge a private project with upstream, shadow upstream again, or release it."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

from havarti.distributions import normalized, parse_dist_filename
from havarti.errors import BodyTooLarge, InvalidRequest, InvalidUpload
from havarti.records import ProjectMode
from havarti.web import context
from havarti.web.auth import require
from havarti.web.errors import one_line

bp = Blueprint("manage", __name__)


def _admin() -> None:
    """Raises Unauthorized / Forbidden unless the request may manage packages (admin)."""
    require(request, "admin", "manage packages")


# The HTML forms (project and file pages): answer with the page that shows the change.

@bp.post("/projects/<name>/files/<filename>/<action>")
def form_action(name: str, filename: str, action: str) -> Response:
    if action not in ("yank", "unyank", "delete"):
        return one_line(404, f"no action {action!r}; use yank, unyank or delete")
    # Cross-site posts were refused before (havarti.web.guard): a browser re-sends
    # basic-auth credentials on any site's form post.
    _admin()
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


#: What a private project may be told about upstream (the last path segment).
PROJECT_ACTIONS = ("merge", "shadow", "release")


def _change_project(name: str, action: str) -> ProjectMode:
    index = context.index()
    if action == "release":
        return index.release(name, request.remote_addr)
    return index.set_upstream_mode(name, action, request.remote_addr)


@bp.post("/projects/<name>/upstream/<action>")
def form_project_action(name: str, action: str) -> Response:
    if action not in PROJECT_ACTIONS:
        return one_line(404, f"no action {action!r}; use {', '.join(PROJECT_ACTIONS)}")
    _admin()
    _change_project(name, action)
    return redirect(url_for("ui.project", name=normalized(name)), code=303)


# The JSON API.

#: Largest JSON body the API reads (a reason is at most 500 characters).
MAX_JSON_BODY = 64 * 1024


def json_object(example: str) -> dict:
    """The request's JSON object body ({} when empty; its type was checked by havarti.web.guard).

    Raises BodyTooLarge (413) or InvalidRequest (400) naming ``example``.
    """
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise BodyTooLarge(f"the body is larger than {MAX_JSON_BODY} bytes")
    data = request.stream.read(MAX_JSON_BODY + 1)
    if len(data) > MAX_JSON_BODY:
        raise BodyTooLarge(f"the body is larger than {MAX_JSON_BODY} bytes")
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise InvalidRequest(f"the body must be a JSON object, e.g. {example}")
    return body


def _reason() -> str:
    """The yank reason from the JSON body."""
    reason = json_object('{"reason": "broken build"}').get("reason", "")
    if not isinstance(reason, str):
        raise InvalidRequest("reason must be a string")
    return reason


@bp.post("/api/projects/<name>/files/<filename>/yank")
def api_yank(name: str, filename: str) -> Response:
    _admin()
    reason = _reason()
    state = context.index().yank(name, filename, reason, request.remote_addr)
    return jsonify(state.as_json())


@bp.post("/api/projects/<name>/files/<filename>/unyank")
def api_unyank(name: str, filename: str) -> Response:
    _admin()
    return jsonify(context.index().unyank(name, filename, request.remote_addr).as_json())


@bp.delete("/api/projects/<name>/files/<filename>")
def api_delete(name: str, filename: str) -> Response:
    _admin()
    index = context.index()
    state = index.delete(name, filename, request.remote_addr)
    return jsonify(state.as_json())


@bp.get("/api/projects/<name>")
def api_project(name: str) -> Response:
    _admin()
    return jsonify(context.index().project_mode(name).as_json())


@bp.post("/api/projects/<name>/<action>")
def api_project_action(name: str, action: str) -> Response:
    if action not in PROJECT_ACTIONS:
        return one_line(404, f"no action {action!r}; use {', '.join(PROJECT_ACTIONS)}")
    _admin()
    return jsonify(_change_project(name, action).as_json())


@bp.get("/api/projects/<name>/audit")
def api_audit(name: str) -> Response:
    _admin()
    entries = context.index().audit_log(name)
    return jsonify({"project": normalized(name), "changes": [
        {"time": e.time.isoformat(), "remote_addr": e.remote_addr, "action": e.action,
         "filename": e.filename, "detail": e.detail} for e in entries]})
