"""``/pypi/<project>/json`` and ``/pypi/<project>/<version>/json``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from havarti.domain.distributions import normalized
from havarti.domain.json_api import private_project_json, upstream_project_json
from havarti.web import context

bp = Blueprint("jsonapi", __name__)


@bp.get("/pypi/<project>/json")
@bp.get("/pypi/<project>/<version>/json")
def project_json(project: str, version: str | None = None) -> Response:
    index = context.index()
    base_url = request.host_url.rstrip("/")
    if normalized(project) not in index.settings.upstream_merge:
        with index.db.session() as session:
            document = private_project_json(session, project, version, base_url)
        if document is not None:
            return jsonify(document)
    return jsonify(upstream_project_json(index.upstream, project, version, base_url))
