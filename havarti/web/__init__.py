"""The web layer: Flask blueprints, and the WSGI page path in front of them (pagepath,
hotpages), all over PackageIndex and the services beside it; HTTP lives only here."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from havarti.config import Settings
from havarti.wiring import IndexHolder


def create_app(settings: Settings, holder: IndexHolder | None = None) -> Flask:
    """The Flask app for ``settings``; ``holder`` supplies the per-process PackageIndex."""
    from havarti import logs
    from havarti.web import (
        admin,
        context,
        errors,
        files,
        guard,
        health,
        jsonapi,
        manage,
        simple,
        telemetry,
        ui,
        upload,
    )
    from havarti.web.auth import require
    from havarti.web.hotpages import wrap as hot_pages
    from havarti.web.pagepath import PagePath

    logs.configure(settings.debug)
    app = Flask(__name__)
    app.config["HAVARTI_SETTINGS"] = settings
    # Room for the multipart envelope around the largest allowed file.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_size + 2**20
    app.extensions["havarti"] = holder or IndexHolder(settings)

    if settings.read_auth:
        @app.before_request
        def require_reader() -> Response | None:
            if request.path in ("/health", "/ready", "/metrics"):
                return None
            require(request, "read", "read this index")
            return None

    for module in (simple, files, upload, jsonapi, health, ui, manage, admin, telemetry):
        app.register_blueprint(module.bp)
    errors.init_app(app)
    # Request sanity, same-origin changes, JSON-only API bodies: before every handler but
    # the request timer (telemetry puts that first, so refusals are timed and logged too).
    guard.init_app(app)
    telemetry.init_app(app)
    app.after_request(context.vary_on_host)
    holder = app.extensions["havarti"]
    app.wsgi_app = PagePath(app.wsgi_app, holder.get, settings)  # type: ignore[method-assign]
    app.wsgi_app = hot_pages(app.wsgi_app, settings.index_ttl, settings.read_auth,  # type: ignore[assignment]
                             settings.page_cache_mb * 2**20 // 4)
    if settings.trusted_proxies:
        # The client address (and scheme) as the trusted proxies saw it; X-Forwarded-For
        # is ignored without them, as any client can send it.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies, x_host=0, x_port=0, x_prefix=0)
    return app
