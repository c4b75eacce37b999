"""The web layer: thin Flask blueprints over havarti.domain.index.PackageIndex."""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.wrappers import Response

from havarti.config import Settings
from havarti.wiring import IndexHolder


def create_app(settings: Settings, holder: IndexHolder | None = None) -> Flask:
    """The Flask app for ``settings``; ``holder`` supplies the per-process PackageIndex."""
    from havarti.web import errors, files, health, jsonapi, manage, simple, telemetry, ui, upload
    from havarti.web.auth import passcode_ok
    from havarti.web.hotpages import wrap as hot_pages

    app = Flask(__name__)
    app.config["HAVARTI_SETTINGS"] = settings
    # Room for the multipart envelope around the largest allowed file.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_size + 2**20
    app.extensions["havarti"] = holder or IndexHolder(settings)
    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.INFO,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    # httpx logs every request at INFO: one line per upstream request is noise, and costs.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    if settings.read_auth:
        @app.before_request
        def require_passcode() -> Response | None:
            if request.path in ("/health", "/ready", "/metrics"):
                return None
            if passcode_ok(request, settings.passcode):
                return None
            return errors.unauthorized("this index requires the passcode to read")

    for module in (simple, files, upload, jsonapi, health, ui, manage, telemetry):
        app.register_blueprint(module.bp)
    errors.init_app(app)
    telemetry.init_app(app)
    app.wsgi_app = hot_pages(app.wsgi_app, settings.index_ttl, settings.read_auth)  # type: ignore[assignment]
    return app
