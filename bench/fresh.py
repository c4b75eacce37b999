"""Fresh and fast: revalidating pages, cold installs and big-page parsing, beside nginx.

``python bench/fresh.py`` builds the reference of bench/run.py (real
distributions and synthesized 2,000/5,000-file projects, a static PEP 503/691
index), serves it with two nginx instances — one sending validators (ETag,
Last-Modified, 304s) and one with ``etag off; if_modified_since off;`` as many
gateways do — and measures Havarti at the default INDEX_TTL=0 in front of each,
against nginx itself, in one run:

- pages under wrk (32 connections): req/s, p99 and Havarti's CPU per request;
- CPU per revalidated unchanged page: one connection, so every request is its
  own upstream check (no sharing);
- cold installs of the reference set from an empty cache, interleaved with
  installs straight from nginx, median of rounds;
- a 5,000-file PEP 691 page fetched, parsed, stored and rendered in-process,
  with the Python memory it peaked at.

Loopback only; the reference download is the only step that reaches the
machine's configured package index.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import measure, reference  # noqa: E402
from tests.support.clients import uv_binary  # noqa: E402
from tests.support.server import clean_env, free_port  # noqa: E402

WORK = ROOT / "bench" / ".work"
PAGES = {"1-file": reference.SMALL_PROJECT, "2,000-file": "synth-2000"}


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pages(nginx: reference.Nginx, label: str, seconds: int) -> list[str]:
    """wrk on each page through Havarti (INDEX_TTL=0) and from nginx; CPU per revalidation."""
    rows = []
    fallback = f"{nginx.url}/simple/"
    data = WORK / "fresh" / f"pages-{label}"
    shutil.rmtree(data, ignore_errors=True)
    with measure.havarti(data, fallback, INDEX_TTL="0") as server:
        pid = server.process.pid  # type: ignore[union-attr]
        for name, project in PAGES.items():
            url = f"{server.index_url}{project}/"
            httpx.get(url, timeout=60).raise_for_status()  # stored once; then every request checks
            # One connection: every request is its own upstream check, nothing shared.
            single = measure.wrk(url, pid, connections=1, threads=1, seconds=seconds)
            load = measure.wrk(url, pid, seconds=seconds)
            ref = measure.wrk(f"{nginx.url}/simple/{project}/", nginx.pid, seconds=seconds)
            rows.append(f"| {name} page, upstream {label} | {load.rps:,.0f} \\| {load.p99_ms:.1f} "
                        f"\\| {load.cpu_us:,.0f} | {ref.rps:,.0f} \\| {ref.p99_ms:.1f} | "
                        f"{load.rps / ref.rps:.2f}x | {single.cpu_us:,.0f} |")
    return rows


def cold_installs(nginx: reference.Nginx, rounds: int) -> tuple[list[float], list[float]]:
    uv, env = uv_binary(), clean_env()
    fallback = f"{nginx.url}/simple/"
    requirements = list(reference.DISTRIBUTIONS)
    ours, direct = [], []
    for i in range(rounds):
        direct.append(measure.uv_install(uv, fallback, requirements, env))
        data = WORK / "fresh" / f"cold-{i}"
        shutil.rmtree(data, ignore_errors=True)
        with measure.havarti(data, fallback) as server:
            ours.append(measure.uv_install(uv, server.index_url, requirements, env))
        step(f"cold round {i + 1}: Havarti {ours[-1]:.2f} s, nginx {direct[-1]:.2f} s")
    return ours, direct


def big_page(nginx: reference.Nginx, runs: int = 5) -> tuple[float, float]:
    """(median ms, peak MB of Python memory) to fetch, parse, store and render the 5,000-file page.

    Timed without tracemalloc (it slows allocation several times over); one more
    run under tracemalloc gives the peak.
    """
    from havarti.config import load_settings
    from havarti.wiring import build_index, prepare

    times, peak = [], 0.0
    for i in range(runs + 1):
        data = WORK / "fresh" / f"render-{i}"
        shutil.rmtree(data, ignore_errors=True)
        settings = load_settings({"FALLBACK": f"{nginx.url}/simple/", "PACKAGE_CACHE": str(data)})
        prepare(settings)
        index = build_index(settings)
        index.project_page(reference.SMALL_PROJECT)  # connections, imports, SQL compiled
        traced = i == runs
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        page = index.project_page("synth-5000")
        if traced:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        else:
            times.append((time.perf_counter() - started) * 1000)
        assert len(page.page.files) == 5000
        index.close()
    return statistics.median(times), peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per page")
    parser.add_argument("--cold-rounds", type=int, default=4, help="cold installs per side")
    args = parser.parse_args()

    step("reference distributions, static index, two nginx")
    measure.ensure_tools()
    dists = WORK / "dists"
    reference.download(dists)
    reference.build_big_wheel(dists)
    reference.build_index(dists, WORK / "www")
    with_validators = reference.Nginx(WORK / "www", WORK, free_port()).start()
    without = reference.Nginx(WORK / "www", WORK, free_port(), validators=False).start()
    lines = [f"Fresh and fast, {time.strftime('%Y-%m-%d %H:%M')} UTC, load before "
             f"{__import__('os').getloadavg()[0]:.1f}", "",
             "| page, INDEX_TTL=0 | Havarti req/s \\| p99 ms \\| CPU µs/req | nginx req/s \\| p99 ms "
             "| ratio | Havarti CPU µs per revalidation (1 connection) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    try:
        step("pages, upstream with validators")
        lines += pages(with_validators, "with validators", args.seconds)
        step("pages, upstream without validators")
        lines += pages(without, "without validators", args.seconds)
        step("5,000-file page: fetch, parse, store, render")
        ms, peak = big_page(with_validators)
        step("cold installs, interleaved")
        ours, direct = cold_installs(with_validators, args.cold_rounds)
    finally:
        with_validators.stop()
        without.stop()
    ratios = [o / d for o, d in zip(ours, direct, strict=True)]
    lines += ["", "| measure | Havarti | nginx | ratio |", "| --- | ---: | ---: | ---: |",
              f"| cold install of {len(reference.DISTRIBUTIONS)} dists, empty cache, median of "
              f"{len(ours)}, s | {statistics.median(ours):.2f} | {statistics.median(direct):.2f} | "
              f"{statistics.median(ratios):.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)}) |",
              f"| 5,000-file page: fetch, parse, store, render, ms (peak Python MB) | {ms:.0f} "
              f"({peak:.0f}) | – | – |"]
    table = "\n".join(lines) + "\n"
    print(table)
    (ROOT / "bench" / "results-fresh.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
