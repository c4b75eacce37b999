"""Running the real Havarti server in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: Data directories of every Havarti process this run started (clean_env notes them): their
#: metrics folders go at the end.
DATA_DIRS: set[Path] = set()


def remove_metrics_folders() -> None:
    """The metrics folders Havarti made (in /dev/shm) for this run's servers, all stopped now."""
    import shutil

    from havarti.metrics import default_folders

    for data_dir in DATA_DIRS:
        for folder in default_folders(data_dir):
            shutil.rmtree(folder, ignore_errors=True)
    DATA_DIRS.clear()


#: The upstream of a server a test gives none: nothing listens there (the discard port),
#: so `havarti serve`'s start-up check never reaches the internet.
NO_UPSTREAM = "http://127.0.0.1:9/simple/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The machine's environment without Havarti's, pip's or uv's own settings."""
    from dataclasses import fields

    from havarti.config import Settings

    ours = {name for f in fields(Settings) for name in f.metadata["env"]} | {
        "PROMETHEUS_MULTIPROC_DIR"}
    env = {k: v for k, v in os.environ.items()
           if k not in ours and not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env.update(extra or {})
    if env.get("PACKAGE_CACHE"):
        DATA_DIRS.add(Path(env["PACKAGE_CACHE"]))
    return env


def stop_process_group(process: subprocess.Popen | None, timeout: float = 15) -> None:
    """SIGTERM a process started with start_new_session and its children; SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class HavartiServer:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    command: list[str] | None = None
    #: Working directory (gunicorn reads ./gunicorn.conf.py from it); default: this process's.
    cwd: Path | None = None
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def index_url(self) -> str:
        return f"{self.url}/simple/"

    def start(self, timeout: float = 30) -> HavartiServer:
        if not self.port:
            self.port = free_port()
        from tests.support.cloud import test_storage_env

        # HAVARTI_TEST_STORAGE runs the suite on a cloud backend (tests/support/cloud.py).
        storage = {} if "STORAGE" in self.env else test_storage_env(self.data_dir)
        env = clean_env({"PACKAGE_CACHE": str(self.data_dir), "PORT": str(self.port),
                         "HOST": "127.0.0.1", "FALLBACK": NO_UPSTREAM, **storage, **self.env})
        self.log_path = self.data_dir.parent / f"havarti-{self.port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = self.command or [sys.executable, "-m", "havarti.cli", "serve", "--workers", "2"]
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True, cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"havarti exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"havarti did not start:\n{self.log()}")

    def stop(self) -> None:
        stop_process_group(self.process)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""
