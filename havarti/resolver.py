"""Dependency resolution for ``havarti prefetch``: uv, asked through Havarti's own index.

The CLI serves this process's Havarti application on a loopback port for as long
as the resolution takes (:func:`local_index`), and runs ``uv pip compile``
against it once per target Python and platform (:class:`UvResolver`). Every
page and ``.metadata`` file uv reads goes through Havarti, so they are stored
too: after an upstream outage, pip and uv still find the pages they need.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from packaging.requirements import InvalidRequirement, Requirement

from havarti.config import Settings
from havarti.domain.platforms import Platform
from havarti.domain.prefetch import PrefetchError, ResolutionFailed

log = logging.getLogger(__name__)

#: A resolution of hundreds of packages through a cold cache takes a while; a hung one not forever.
RESOLVE_TIMEOUT = 900


@contextmanager
def local_index(app: Any, settings: Settings) -> Iterator[str]:
    """Serve the WSGI ``app`` on a free loopback port; yields its /simple/ URL.

    With ``READ_AUTH`` the URL carries the passcode, as any reader's would.
    """
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # Havarti logs its own requests

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, name="havarti-prefetch-index",
                              daemon=True)
    thread.start()
    credentials = f"havarti:{quote(settings.passcode or '', safe='')}@" if settings.read_auth else ""
    try:
        yield f"http://{credentials}127.0.0.1:{server.server_port}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def uv_binary() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        raise PrefetchError("uv is not installed (pip install uv): prefetch resolves "
                            "dependencies with it; --no-deps needs no resolver") from None
    try:
        return find_uv_bin()
    except FileNotFoundError as exc:
        raise PrefetchError(f"uv: {exc}") from None


class UvResolver:
    """``uv pip compile`` against one index: the pins for one Python and platform."""

    def __init__(self, index_url: str, binary: str | None = None,
                 timeout: float = RESOLVE_TIMEOUT) -> None:
        self.index_url = index_url
        self.binary = binary or uv_binary()
        self.timeout = timeout

    def __call__(self, requirements: list[Requirement], python: tuple[int, int],
                 platform: Platform) -> list[Requirement]:
        command = [self.binary, "pip", "compile", "-", "--quiet", "--no-config", "--no-cache",
                   "--no-header", "--no-annotate",
                   "--python-version", f"{python[0]}.{python[1]}",
                   "--python-platform", platform.uv_name]
        # Only Havarti's index: the user's uv settings (extra indexes, a cache) must not answer.
        env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
        # In the environment, not the command line: with READ_AUTH it holds the passcode.
        env["UV_DEFAULT_INDEX"] = self.index_url
        try:
            result = subprocess.run(command, input="\n".join(map(str, requirements)) + "\n",
                                    capture_output=True, text=True, env=env, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise ResolutionFailed(f"uv did not finish within {self.timeout:.0f}s") from None
        if result.returncode != 0:
            raise ResolutionFailed(_one_line(result.stderr) or f"uv exited with {result.returncode}")
        return _pins(result.stdout)


def _pins(output: str) -> list[Requirement]:
    pins = []
    for line in output.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            pins.append(Requirement(line.rstrip("\\").strip()))
        except InvalidRequirement:
            log.warning("prefetch-unreadable-pin line=%s", line)
    return pins


def _one_line(text: str) -> str:
    """uv's error, tree drawing and all, as one line."""
    parts = [line.strip(" ×╰─▶│├").strip() for line in text.splitlines()]
    return " ".join(p for p in parts if p).removeprefix("error: ").replace(" cause: ", ": ")
