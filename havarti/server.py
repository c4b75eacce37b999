"""Running the web app under gunicorn (threads) for `havarti serve`."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from havarti import metrics
from havarti.config import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options: dict[str, Any] = {
            "bind": f"[{s.host}]:{s.port}" if ":" in s.host else f"{s.host}:{s.port}",
            "workers": s.workers,
            "worker_class": "gthread",
            "threads": s.threads,
            "preload_app": True,
            # Several instances on one machine (tests, benchmarks) must not share one socket.
            "control_socket_disable": True,
            "timeout": 300,
            "graceful_timeout": 10,
            "keepalive": 5,
            "accesslog": "-" if s.debug else None,
            # The workers are gone by then: their metrics files go too.
            "on_exit": lambda _arbiter: metrics.remove_default_folder(),
            "loglevel": "debug" if s.debug else "info",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from havarti.application import Havarti

        app = Havarti(self.settings, migrate=False)
        app.flask  # noqa: B018 -- build before forking
        return app


def run(settings: Settings) -> None:
    _Gunicorn(settings).run()
