"""Havarti vs nginx, side by side in one run: ``python bench/run.py``.

Builds the reference (about 40 real distributions downloaded once with pip, a
100 MB wheel, two synthesized 2,000- and 5,000-file projects, a static PEP
503/691 index served by nginx on loopback), then measures Havarti in front of
that nginx against nginx itself, prints a Markdown table and writes
bench/results.md. Loopback only; the download is the only step that reaches
the machine's configured package index.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import measure, reference  # noqa: E402
from tests.support.clients import uv_binary  # noqa: E402
from tests.support.server import HavartiServer, clean_env, free_port  # noqa: E402

WORK = ROOT / "bench" / ".work"
_T0 = time.monotonic()
_LOAD_BEFORE = 0.0


def step(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    what: str
    havarti: str
    nginx: str
    ratio: str
    target: str
    met: str


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


@contextmanager
def havarti(data_dir: Path, fallback: str, **env: str) -> Iterator[HavartiServer]:
    server = HavartiServer(data_dir, env={"FALLBACK": fallback, **env}).start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm installs per side (median)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold-cache installs (median)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per page")
    args = parser.parse_args()
    global _LOAD_BEFORE
    _LOAD_BEFORE = os.getloadavg()[0]
    started = time.monotonic()

    step("tools, reference distributions, static index")
    measure.ensure_tools()
    dists = WORK / "dists"
    reference.download(dists)
    big = reference.build_big_wheel(dists)
    reference.build_index(dists, WORK / "www")
    nginx = reference.Nginx(WORK / "www", WORK, free_port()).start()
    try:
        rows = run_all(args, nginx, big.name)
    finally:
        nginx.stop()

    elapsed = time.monotonic() - started
    table = render(rows, elapsed)
    print(table)
    (ROOT / "bench" / "results.md").write_text(table)
    return 0


def run_all(args: argparse.Namespace, nginx: reference.Nginx, big_name: str) -> list[Row]:
    uv = uv_binary()
    env = clean_env()
    fallback = f"{nginx.url}/simple/"
    requirements = list(reference.DISTRIBUTIONS)
    rows: list[Row] = []
    caches = WORK / "caches"
    shutil.rmtree(caches, ignore_errors=True)

    # (b) cold cache: a fresh PACKAGE_CACHE and server for each run.
    step("(b) cold-cache installs")
    cold, cold_ref = [], []
    for i in range(args.cold_runs):
        cold_ref.append(measure.uv_install(uv, fallback, requirements, env))
        with havarti(caches / f"cold-{i}", fallback) as server:
            cold.append(measure.uv_install(uv, server.index_url, requirements, env))
    warm_dir = caches / f"cold-{args.cold_runs - 1}"

    step("(a) warm-cache installs")
    # (a) warm cache, at the default INDEX_TTL=0 (revalidate every page) and at 300.
    warm: dict[str, list[float]] = {"0": [], "300": []}
    ref: list[float] = []
    rss_install = 0.0
    for ttl in ("0", "300"):
        with havarti(warm_dir, fallback, INDEX_TTL=ttl) as server:
            measure.uv_install(uv, server.index_url, requirements, env)  # prime in-process caches
            with measure.RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
                for _ in range(args.runs):
                    ref.append(measure.uv_install(uv, fallback, requirements, env))
                    warm[ttl].append(measure.uv_install(uv, server.index_url, requirements, env))
            rss_install = max(rss_install, rss.peak)
    ref_med = statistics.median(ref)
    for ttl, target in (("0", 1.05), ("300", 1.05)):
        med = statistics.median(warm[ttl])
        rows.append(_ratio_row(f"(a) warm install of {len(requirements)} dists, s (INDEX_TTL={ttl})",
                               med, ref_med, f"≤ {target}x", target))
    cold_med, cold_ref_med = statistics.median(cold), statistics.median(cold_ref)
    rows.append(_ratio_row("(b) cold-cache install, s (INDEX_TTL=0)", cold_med, cold_ref_med,
                           "≤ 1.15x", 1.15))

    step("(c) wrk on project pages, (d) the 100 MB file")
    # (c) warm project pages under wrk, and (d) the cached 100 MB file.
    pages = {"small": reference.SMALL_PROJECT, "2,000-file": "synth-2000"}
    targets = {"small": (4000, 20.0), "2,000-file": (2000, 30.0)}
    nginx_pages = {label: measure.wrk(f"{nginx.url}/simple/{project}/", nginx.pid, seconds=args.seconds)
                   for label, project in pages.items()}
    rss_pages = 0.0
    big_url = f"/files/{reference.BIG_PROJECT}/{big_name}"
    mbs = nginx_mbs = 0.0
    for ttl in ("300", "0"):
        with havarti(warm_dir, fallback, INDEX_TTL=ttl) as server:
            for project in pages.values():
                httpx.get(f"{server.index_url}{project}/", timeout=30).raise_for_status()
            with measure.RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
                for label, project in pages.items():
                    load = measure.wrk(f"{server.index_url}{project}/", server.process.pid,  # type: ignore[union-attr]
                                       seconds=args.seconds)
                    ref_load = nginx_pages[label]
                    min_rps, max_p99 = targets[label]
                    ok = load.rps >= min_rps and load.p99_ms < max_p99
                    rows.append(Row(f"(c) {label} page, req/s \\| p99 ms \\| server CPU µs/req (INDEX_TTL={ttl})",
                                    _load(load), _load(ref_load), f"{load.rps / ref_load.rps:.2f}x",
                                    f"≥ {min_rps:,} \\| < {max_p99:.0f}" if ttl != "0" else "report",
                                    ("yes" if ok else "**no**") if ttl != "0" else "–"))
            rss_pages = max(rss_pages, rss.peak)
            if ttl == "300":
                # First request caches the file (streamed from nginx); then measure the cached copy.
                with httpx.stream("GET", f"{server.url}{big_url}", timeout=120) as response:
                    response.raise_for_status()
                    for _ in response.iter_bytes():
                        pass
                mbs = measure.throughput(f"{server.url}{big_url}")
                nginx_mbs = measure.throughput(f"{nginx.url}/files/{big_name}")
    rows.append(Row("(d) cached 100 MB file, MB/s", _fmt(mbs, 0), _fmt(nginx_mbs, 0),
                    f"{mbs / nginx_mbs:.2f}x", "≥ 0.90x", "yes" if mbs >= 0.9 * nginx_mbs else "**no**"))

    step("(e) 5,000-file page render")
    # (e) the 5,000-file page, built at the server with its caches dropped.
    times = measure.render_times(fallback, caches / "render", "synth-5000")
    rows.append(Row("(e) 5,000-file page rebuilt from the stored page, ms (INDEX_TTL>0)",
                    _fmt(times["rebuild"], 1), "–", "–", "< 50", "yes" if times["rebuild"] < 50 else "**no**"))
    rows.append(Row("(e) same, plus a 304 revalidation, ms (INDEX_TTL=0)",
                    _fmt(times["revalidate"], 1), "–", "–", "< 50",
                    "yes" if times["revalidate"] < 50 else "**no**"))
    rows.append(Row("(e) first request: fetch, parse, store, render, ms", _fmt(times["first"], 1),
                    "–", "–", "report", "–"))

    # (f) the web processes' memory.
    for label, value in (("(a) installs", rss_install), ("(c) wrk", rss_pages)):
        rows.append(Row(f"(f) peak RSS, gunicorn master + workers, MB, during {label}", _fmt(value, 0),
                        "–", "–", "< 100", "yes" if value < 100 else "**no**"))
    return rows


def _load(load: measure.Load) -> str:
    timeouts = f" ({load.timeouts} timeouts)" if load.timeouts else ""
    return f"{_fmt(load.rps, 0)} \\| {_fmt(load.p99_ms, 1)} \\| {_fmt(load.cpu_us, 0)}{timeouts}"


def _ratio_row(what: str, value: float, ref: float, target: str, limit: float) -> Row:
    ratio = value / ref
    return Row(what, _fmt(value), _fmt(ref), f"{ratio:.2f}x", target, "yes" if ratio <= limit else "**no**")


def render(rows: list[Row], elapsed: float) -> str:
    lines = [f"Havarti vs nginx, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
             f"Python {platform.python_version()}, run took {elapsed:.0f} s, "
             f"load average before/after {_LOAD_BEFORE:.1f}/{os.getloadavg()[0]:.1f}.", "",
             "| measure | Havarti | nginx | ratio | target | met |",
             "| --- | ---: | ---: | ---: | --- | --- |"]
    lines += [f"| {r.what} | {r.havarti} | {r.nginx} | {r.ratio} | {r.target} | {r.met} |" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
