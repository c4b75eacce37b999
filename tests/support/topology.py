"""The seed's production topology, started from its own commands, for tests and bench/.

Web processes are ``gunicorn ... havarti:app`` and downloaders are ``celery
--app=havarti worker -l info`` (or ``havarti worker``), all sharing one
database, one Redis and one storage directory::

    with Topology(root, database_url, redis_url, upstream_url) as topology:
        web, _ = topology.start(topology.web, topology.worker)
        # web: gunicorn -w 2 --preload on a free port; then celery --app=havarti worker -l info
        httpx.get(web.index_url + "requests/")
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tests.support.server import HavartiServer, clean_env, free_port, stop_process_group

GUNICORN = [sys.executable, "-m", "gunicorn"]
T = TypeVar("T")


def seed_web_command(port: int, workers: int = 2, threads: int = 0) -> list[str]:
    """The seed's web command: ``gunicorn -w 2 --preload -b 127.0.0.1:PORT havarti:app``.

    ``threads`` adds ``--threads N`` (gunicorn's gthread worker).
    """
    extra = ["--threads", str(threads)] if threads else []
    return [*GUNICORN, "-w", str(workers), *extra, "--preload", "-b", f"127.0.0.1:{port}",
            "havarti:app"]


def celery_command() -> list[str]:
    """The seed's downloader: ``celery --app=havarti worker -l info``."""
    return [shutil.which("celery") or "celery", "--app=havarti", "worker", "-l", "info"]


def havarti_worker_command() -> list[str]:
    return [sys.executable, "-m", "havarti.cli", "worker"]


class Worker:
    """A downloader process; ready when Celery logs that it is."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Worker:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            if " ready." in self.log()[start:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker did not become ready:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes: no clean-up, no acknowledgement."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        stop_process_group(self.process)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Topology:
    """Web processes and downloaders on one database, one Redis and one storage directory."""

    def __init__(self, root: Path, database_url: str, redis_url: str, upstream_url: str,
                 env: dict[str, str] | None = None) -> None:
        self.root = root
        self.data_dir = root / "shared-data"
        self.env = {"DB_URI": database_url, "REDIS_URI": redis_url, "FALLBACK": upstream_url,
                    "UPSTREAM_TIMEOUT": "5", **(env or {})}
        self.webs: list[HavartiServer] = []
        self.workers: list[Worker] = []
        self._numbers = itertools.count()

    def web(self, command: list[str] | None = None, env: dict[str, str] | None = None,
            workers: int = 2, threads: int = 0) -> HavartiServer:
        """Start a web process (default: the seed's gunicorn command) and wait for /health."""
        port = free_port()
        server = HavartiServer(self.data_dir, {**self.env, **(env or {})}, port=port,
                               command=command or seed_web_command(port, workers, threads))
        self.webs.append(server)
        return server.start(timeout=60)

    def worker(self, command: list[str] | None = None, env: dict[str, str] | None = None) -> Worker:
        """Start a downloader (default: the seed's celery command) and wait until it is ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        full_env = clean_env({"PACKAGE_CACHE": str(self.data_dir), **self.env, **(env or {})})
        worker = Worker(command or celery_command(), full_env,
                        self.root / f"worker-{next(self._numbers)}.log")
        self.workers.append(worker)
        return worker.start()

    def start(self, *launches: Callable[[], Any]) -> list[Any]:
        # Any: the launches return web servers and downloaders alike.
        """Run several ``web``/``worker`` launches at once (start-up takes seconds each)."""
        with ThreadPoolExecutor(len(launches)) as pool:
            return [f.result() for f in [pool.submit(launch) for launch in launches]]

    def logs(self) -> str:
        return "\n".join([w.log() for w in self.webs] + [w.log() for w in self.workers])

    def stop(self) -> None:
        processes: list[HavartiServer | Worker] = [*self.webs, *self.workers]
        if processes:
            with ThreadPoolExecutor(len(processes)) as pool:
                list(pool.map(lambda p: p.stop(), processes))

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
