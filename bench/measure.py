"""Measuring tools: timed uv installs, wrk, curl throughput, process-tree RSS, page render time."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from tests.support.server import HavartiServer

#: What pip sends for a project page: both sides negotiate the same representation.
PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
              "text/html; q=0.01")
#: What pip (requests) sends as Accept-Encoding: pages measured as pip fetches them.
PIP_ENCODING = "gzip, deflate"


def ensure_tools() -> None:
    """Install nginx and wrk from Debian when missing (idempotent: checks first)."""
    missing = [pkg for pkg in ("nginx", "wrk") if shutil.which(pkg) is None]
    if not missing:
        return
    sudo = [] if _is_root() else ["sudo"]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run([*sudo, "apt-get", "install", "-y", "-q", *missing], env=env)
    if result.returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-q", *missing], env=env, check=True)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def uv_install(uv: str, index_url: str, requirements: list[str], env: dict[str, str]) -> float:
    """Seconds for ``uv pip install --no-cache --no-deps`` of ``requirements`` into a fresh target."""
    import sys

    with tempfile.TemporaryDirectory(prefix="bench-target-") as target:
        started = time.perf_counter()
        result = subprocess.run([uv, "pip", "install", "--no-cache", "--no-deps", "--quiet",
                                 "--python", sys.executable, "--target", target,
                                 "--index-url", index_url, *requirements],
                                env=env, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"uv install from {index_url} failed:\n{result.stderr[-2000:]}")
    return elapsed


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class Load:
    """What wrk saw, and the server's CPU time per request (robust on a busy machine)."""

    rps: float
    p99_ms: float
    cpu_us: float
    timeouts: int


def wrk(url: str, server_pid: int, connections: int = 32, threads: int = 2, seconds: int = 10,
        encoding: str | None = PIP_ENCODING) -> Load:
    """``wrk --latency`` on ``url`` with pip's headers (``encoding=None``: no compression)."""
    cpu_before = tree_cpu_seconds(server_pid)
    headers = ["-H", f"Accept: {PIP_ACCEPT}"]
    if encoding:
        headers += ["-H", f"Accept-Encoding: {encoding}"]
    out = subprocess.run(["wrk", f"-c{connections}", f"-t{threads}", f"-d{seconds}s", "--latency",
                          *headers, url],
                         capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk {url}: errors\n{out}")
    cpu = tree_cpu_seconds(server_pid) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", out).groups()  # type: ignore[union-attr]
    timeouts = re.search(r"timeout (\d+)", out)
    return Load(rps, float(value) * _UNITS[unit], cpu / max(total, 1) * 1e6,
                int(timeouts.group(1)) if timeouts else 0)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (live ones)."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def throughput(url: str, runs: int = 5) -> float:
    """Median MB/s (10^6 bytes) of downloading ``url`` (following redirects) with curl into /dev/null."""
    speeds = []
    for _ in range(runs):
        out = subprocess.run(["curl", "-sS", "-f", "-L", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
                              url],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        size, seconds = out.split()
        speeds.append(float(size) / float(seconds) / 1e6)
    return statistics.median(speeds)


class RssSampler:
    """Peak summed RSS and PSS (MB) of a process and all its children, sampled in a thread.

    RSS counts pages a preloaded master shares with its forked workers once per
    process; PSS divides each shared page among its sharers, so its sum is the
    memory the web processes really take together.
    """

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0.0
        self.peak_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> tuple[float, float]:
        rss = pss = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        return rss / 2**20, pss / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = self.sample()
            self.peak = max(self.peak, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(self.interval)


def render_times(fallback: str, data_dir: Path, project: str, runs: int = 7) -> dict[str, float]:
    """Milliseconds to build ``project``'s page in-process, cold and with every cache dropped.

    ``first``: fetched from upstream, parsed, stored and rendered. ``rebuild``: the
    stored page read back from the database and rendered (INDEX_TTL>0, e.g. after a
    restart or an eviction). ``revalidate``: the same plus a 304 round trip (INDEX_TTL=0).
    """
    from havarti.config import load_settings
    from havarti.wiring import build_index, prepare

    results: dict[str, float] = {}
    for ttl in ("300", "0"):
        settings = load_settings({"FALLBACK": fallback, "PACKAGE_CACHE": str(data_dir),
                                  "INDEX_TTL": ttl})
        prepare(settings)
        index = build_index(settings)
        try:
            started = time.perf_counter()
            index.project_page(project)
            if ttl == "300":
                results["first"] = (time.perf_counter() - started) * 1e3
            samples = []
            for _ in range(runs):
                # Drop the in-memory page and upstream-state caches: the worst case a request meets.
                index._pages.clear()
                index.mirror._states.clear()
                started = time.perf_counter()
                page = index.project_page(project)
                samples.append((time.perf_counter() - started) * 1e3)
            assert len(page.page.files) > 1000, "the page must list the synthesized files"
            results["rebuild" if ttl == "300" else "revalidate"] = statistics.median(samples)
        finally:
            index.close()
    return results


@contextmanager
def havarti(data_dir: Path, fallback: str | None, **env: str) -> Iterator[HavartiServer]:
    """Havarti serving in front of ``fallback`` (None: its default upstream, PyPI)."""
    from tests.support.server import HavartiServer

    settings = {"FALLBACK": fallback, **env} if fallback else dict(env)
    server = HavartiServer(data_dir, env=settings).start(timeout=60)
    try:
        yield server
    finally:
        server.stop()
