"""Access to the per-process services from request handlers."""

from __future__ import annotations

from flask import current_app

from havarti.config import Settings
from havarti.domain.index import PackageIndex


def index() -> PackageIndex:
    return current_app.extensions["havarti"].get()


def settings() -> Settings:
    return current_app.config["HAVARTI_SETTINGS"]
