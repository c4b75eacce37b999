"""``/pypi/<project>/json`` and ``/pypi/<project>/<version>/json``."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from havarti.web import context

bp = Blueprint("jsonapi", __name__)


@bp.get("/pypi/<project>/json")
@bp.get("/pypi/<project>/<version>/json")
def project_json(project: str, version: str | None = None) -> Response:
    return jsonify(context.index().project_json(project, version, context.base_url()))
