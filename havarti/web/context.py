"""Access to the per-process services from request handlers."""

from __future__ import annotations

from flask import current_app, g, request
from werkzeug.wrappers import Response

from havarti.config import Settings
from havarti.domain.index import PackageIndex


def index() -> PackageIndex:
    return current_app.extensions["havarti"].get()


def settings() -> Settings:
    return current_app.config["HAVARTI_SETTINGS"]


def base_url() -> str:
    """Where users reach Havarti (Settings.base_url): PUBLIC_URL, else this request's URL.

    Without PUBLIC_URL the answer comes from the request's Host header: the response
    is then marked by :func:`vary_on_host`, so no shared cache hands it to other hosts.
    """
    configured = settings()
    if not configured.public_url:
        g.havarti_host_dependent = True
    return configured.base_url(request.host_url)


def vary_on_host(response: Response) -> Response:
    """After a request whose answer embeds its Host: ``Vary: Host``, and private to caches."""
    if g.pop("havarti_host_dependent", False):
        response.vary.add("Host")
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "private"
    return response
