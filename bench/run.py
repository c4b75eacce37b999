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
import contextlib
import os
import platform
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import measure, reference  # noqa: E402
from tests.support.clients import uv_binary  # noqa: E402
from tests.support.server import clean_env, free_port  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm installs per side (median)")
    parser.add_argument("--cold-runs", type=int, default=2, help="cold-cache installs (median)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per page")
    parser.add_argument("--no-topology", dest="topology", action="store_false",
                        help="skip the production-topology column (Postgres, Redis, Celery)")
    parser.add_argument("--no-backends", dest="backends", action="store_false",
                        help="skip the per-storage-backend figures (needs the local Swift)")
    parser.add_argument("--no-serving", dest="serving", action="store_false",
                        help="skip the web-process figures of bench/serving.py (servers, memory, slow clients)")
    args = parser.parse_args()
    global _LOAD_BEFORE
    # A stopped run (kill, timeout) still stops its nginx and Havarti servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
        with measure.havarti(caches / f"cold-{i}", fallback) as server:
            cold.append(measure.uv_install(uv, server.index_url, requirements, env))
    warm_dir = caches / f"cold-{args.cold_runs - 1}"

    step("(a) warm-cache installs")
    # (a) warm cache, at the default INDEX_TTL=0 (revalidate every page) and at 300.
    warm: dict[str, list[float]] = {"0": [], "300": []}
    ref: list[float] = []
    rss_install = pss_install = 0.0
    for ttl in ("0", "300"):
        with measure.havarti(warm_dir, fallback, INDEX_TTL=ttl) as server:
            measure.uv_install(uv, server.index_url, requirements, env)  # prime in-process caches
            with measure.RssSampler(server.process.pid) as rss:  # type: ignore[union-attr]
                for _ in range(args.runs):
                    ref.append(measure.uv_install(uv, fallback, requirements, env))
                    warm[ttl].append(measure.uv_install(uv, server.index_url, requirements, env))
            rss_install = max(rss_install, rss.peak)
            pss_install = max(pss_install, rss.peak_pss)
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
    rss_pages = pss_pages = 0.0
    big_url = f"/files/{reference.BIG_PROJECT}/{big_name}"
    mbs = nginx_mbs = 0.0
    for ttl in ("300", "0"):
        with measure.havarti(warm_dir, fallback, INDEX_TTL=ttl) as server:
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
            pss_pages = max(pss_pages, rss.peak_pss)
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

    if args.serving:
        step("serving: candidate servers, web-process memory, slow clients (bench/serving.py)")
        rows += _guarded("serving", lambda: serving_rows(args, nginx, fallback, big_url))

    if args.topology:
        step("production topology: gunicorn + Celery + Postgres + Redis, local storage")
        rows += _guarded("topology", lambda: topology_rows(args, fallback, requirements, ref_med, nginx_pages))

    if args.backends:
        step("storage backends: local, S3 (redirect, stream), Swift, on the local Swift")
        rows += _guarded("backends", lambda: backend_rows(args, fallback, requirements, ref_med, big_name,
                                                          nginx_mbs))

    # (f) the web processes' memory.
    for label, value, pss in (("(a) installs", rss_install, pss_install), ("(c) wrk", rss_pages, pss_pages)):
        rows.append(Row(f"(f) peak RSS (PSS), gunicorn master + 2 workers, MB, during {label}",
                        f"{_fmt(value, 0)} ({_fmt(pss, 0)})", "–", "–", "< 100",
                        "yes" if value < 100 else "**no**"))
    return rows


def serving_rows(args: argparse.Namespace, nginx: reference.Nginx, fallback: str,
                 big_url: str) -> list[Row]:
    """bench/serving.py's figures (issue 10), beside this run's nginx."""
    from bench import serving

    small = next((WORK / "dists").glob(f"{reference.SMALL_PROJECT}-*.whl")).name
    found = serving.rows(nginx, fallback, big_url, f"/files/{reference.SMALL_PROJECT}/{small}",
                         args.seconds)
    return [Row(f"(serving) {r.what}", r.value, r.nginx, "–", r.target, r.met) for r in found]


def topology_rows(args: argparse.Namespace, fallback: str, requirements: list[str], ref_med: float,
                  nginx_pages: dict[str, measure.Load]) -> list[Row]:
    """Issue 4's column: the seed's web command and a Celery downloader on Postgres and Redis."""
    from tests.support.services import postgres_database, service_url
    from tests.support.topology import Topology

    uv, env = uv_binary(), clean_env()
    rows = []
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_database("havarti_bench"))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 -- the helper skips (a pytest outcome) when absent
            return [Row(f"(topology) skipped: {str(exc).splitlines()[0]}", "–", "–", "–", "–", "–")]
        redis = service_url("HAVARTI_TEST_REDIS").rstrip("/")
        # Redis database 13: clear of the suite's own queues when both run at once.
        topo = stack.enter_context(Topology(WORK / "caches" / "topology", url, f"{redis}/13", fallback))
        web, _ = topo.start(lambda: topo.web(workers=3), topo.worker)
        measure.uv_install(uv, web.index_url, requirements, env)  # cold: fills storage
        measure.uv_install(uv, web.index_url, requirements, env)
        with measure.RssSampler(web.process.pid) as rss:  # type: ignore[union-attr]
            warm = [measure.uv_install(uv, web.index_url, requirements, env) for _ in range(args.runs)]
        rows.append(_ratio_row("(a) topology: warm install, s (INDEX_TTL=0)",
                               statistics.median(warm), ref_med, "≤ 1.05x", 1.05))
        fast = topo.web(workers=3, env={"INDEX_TTL": "300"})
        for label, project in (("small", reference.SMALL_PROJECT), ("2,000-file", "synth-2000")):
            httpx.get(f"{fast.index_url}{project}/", timeout=30).raise_for_status()
            load = measure.wrk(f"{fast.index_url}{project}/", fast.process.pid,  # type: ignore[union-attr]
                               seconds=args.seconds)
            rows.append(Row(f"(c) topology: {label} page (INDEX_TTL=300)", _load(load),
                            _load(nginx_pages[label]), f"{load.rps / nginx_pages[label].rps:.2f}x",
                            "report", "–"))
        rows.append(Row("(f) topology: peak web RSS (PSS), master + 3 workers, during (a), MB",
                        f"{_fmt(rss.peak, 0)} ({_fmt(rss.peak_pss, 0)})", "–", "–",
                        "< 100", "yes" if rss.peak < 100 else "**no**"))
    return rows


def backend_rows(args: argparse.Namespace, fallback: str, requirements: list[str], ref_med: float,
                 big_name: str, nginx_mbs: float) -> list[Row]:
    """Issue 5's figures: warm install and cached-file MB/s per storage backend."""
    from tests.support.cloud import backend_env, swift_settings

    try:
        swift = swift_settings()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 -- the helper skips (a pytest outcome) when absent
        return [Row(f"(backends) skipped: {str(exc).splitlines()[0]}", "–", "–", "–", "–", "–")]
    configs = [("local", {}),
               ("S3, redirect to presigned URLs", backend_env("s3storage", swift, redirect=True)),
               ("S3, streamed through Havarti", backend_env("s3storage", swift, redirect=False)),
               ("Swift, redirect to temp URLs", backend_env("swiftstorage", swift, redirect=True)),
               ("Swift, streamed through Havarti", backend_env("swiftstorage", swift, redirect=False))]
    rows = []
    for number, (label, storage_env) in enumerate(configs):
        def one(number: int = number, label: str = label, storage_env: dict[str, str] = storage_env) -> list[Row]:
            warm, mbs = _backend(WORK / "caches" / f"backend-{number}", storage_env, fallback, requirements,
                                 big_name)
            return [_ratio_row(f"(backend) {label}: warm install, s", warm, ref_med, "report", None),
                    Row(f"(backend) {label}: cached 100 MB file, MB/s", _fmt(mbs, 0), _fmt(nginx_mbs, 0),
                        f"{mbs / nginx_mbs:.2f}x", "report", "–")]

        rows += _guarded(label, one)
    return rows


def _backend(data_dir: Path, storage_env: dict[str, str], fallback: str, requirements: list[str],
             big_name: str) -> tuple[float, float]:
    """(warm install seconds, cached 100 MB file MB/s) on one storage backend."""
    from tests.support.cloud import empty_and_remove

    uv, env = uv_binary(), clean_env()
    big_url = f"/files/{reference.BIG_PROJECT}/{big_name}"
    try:
        with measure.havarti(data_dir, fallback, **storage_env) as server:
            measure.uv_install(uv, server.index_url, requirements, env)  # cold: fills storage
            # One warm install each: five backends must fit the run's time budget.
            warm = measure.uv_install(uv, server.index_url, requirements, env)
            httpx.get(f"{server.index_url}{reference.BIG_PROJECT}/", timeout=30).raise_for_status()
            measure.throughput(f"{server.url}{big_url}", runs=1)  # cold: fills storage
            return warm, measure.throughput(f"{server.url}{big_url}", runs=3)
    finally:
        if storage_env:
            empty_and_remove(storage_env)


def _guarded(label: str, measure_part: Callable[[], list[Row]]) -> list[Row]:
    """A part that needs other services or backends: its failure is a row, not a lost run."""
    try:
        return measure_part()
    except Exception as exc:  # noqa: BLE001 -- report whatever broke, keep the other figures
        step(f"{label} failed: {exc!r}")
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Row(f"({label}) failed: {type(exc).__name__}: {reason[:120]}", "–", "–", "–", "–", "–")]


def _load(load: measure.Load) -> str:
    timeouts = f" ({load.timeouts} timeouts)" if load.timeouts else ""
    return f"{_fmt(load.rps, 0)} \\| {_fmt(load.p99_ms, 1)} \\| {_fmt(load.cpu_us, 0)}{timeouts}"


def _ratio_row(what: str, value: float, ref: float, target: str, limit: float | None) -> Row:
    ratio = value / ref
    met = "–" if limit is None else "yes" if ratio <= limit else "**no**"
    return Row(what, _fmt(value), _fmt(ref), f"{ratio:.2f}x", target, met)


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
