"""The web process itself, beside nginx in the same run: ``python bench/serving.py``.

Issue 10's figures: warm pages under each candidate server (req/s, p99, CPU per
request), the memory of each web process after 1,000 mixed requests, a page
during six slow downloads on both command lines, and /health while slow
clients hold 200 connections. Called by bench/run.py (its nginx and index), or
alone, when it builds a small index of its own (two wheels and the
synthesized 2,000-file project). Loopback only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import measure, reference  # noqa: E402
from tests.support import dists as test_dists  # noqa: E402
from tests.support.server import HavartiServer, free_port  # noqa: E402
from tests.support.slowclients import SlowClients, probe  # noqa: E402

WORK = ROOT / "bench" / ".work" / "serving"
PAGES = {"1-file": reference.SMALL_PROJECT, "2,000-file": "synth-2000"}
#: Issue 10's targets: (req/s, share of nginx) per page; p99 under 20 ms for both.
TARGETS = {"1-file": (8000, 0.12), "2,000-file": (5000, 0.30)}
SLOW_WHEEL = "slowfood"


@dataclass
class Row:
    what: str
    value: str
    nginx: str
    target: str
    met: str


@dataclass
class Candidate:
    """A way to run the web process: a label and its command line (None: ``havarti serve``)."""

    label: str
    command: list[str] | None
    env: dict[str, str]


def candidates(port: int) -> list[Candidate]:
    py = sys.executable
    found = [
        Candidate("havarti serve: gunicorn, guarded gthread (2 workers x 16 threads)", None, {}),
        Candidate("gunicorn, plain gthread (2 x 16), no guard", [
            py, "-m", "gunicorn", "-c", "/dev/null", "-k", "gthread", "-w", "2", "--threads", "16",
            "-b", f"127.0.0.1:{port}", "havarti:app"], {}),
        Candidate("seed line, gunicorn -w 3 --preload (guarded gthread via gunicorn.conf.py)", [
            py, "-m", "gunicorn", "-w", "3", "--preload", "-b", f"127.0.0.1:{port}", "havarti:app"],
            {}),
    ]
    found.append(Candidate("havarti serve, WEB_SERVER=granian (2 workers x 16 blocking threads)",
                           None, {"WEB_SERVER": "granian"}))
    return found


@contextlib.contextmanager
def started(data_dir: Path, fallback: str, command: list[str] | None = None, port: int = 0,
            **env: str) -> Iterator[HavartiServer]:
    server = HavartiServer(data_dir, env={"FALLBACK": fallback, "PASSCODE": "bench", **env},
                           port=port or free_port(), command=command, cwd=ROOT)
    server.start(timeout=90)
    try:
        yield server
    finally:
        server.stop()


def warm(server: HavartiServer, big_file: str | None = None) -> None:
    for project in PAGES.values():
        for accept in (measure.PIP_ACCEPT, "text/html"):
            httpx.get(f"{server.index_url}{project}/", headers={"Accept": accept},
                      timeout=60).raise_for_status()
    if big_file:
        with httpx.stream("GET", f"{server.url}{big_file}", timeout=120) as response:
            response.raise_for_status()
            for _ in response.iter_bytes():
                pass


def page_rows(nginx: reference.Nginx, fallback: str, big_file: str, seconds: int) -> list[Row]:
    """Warm pages and a cached file under each candidate, and nginx serving the same as static files."""
    ref = {label: measure.wrk(f"{nginx.url}/simple/{project}/", nginx.pid, seconds=seconds)
           for label, project in PAGES.items()}
    ref_mbs = measure.throughput(f"{nginx.url}/files/{big_file.rsplit('/', 1)[1]}")
    rows = []
    data = WORK / "pages"
    shutil.rmtree(data, ignore_errors=True)
    with started(data, fallback, INDEX_TTL="600") as server:
        warm(server, big_file)  # fetched and stored once, before any candidate is measured
    for candidate in candidates(port := free_port()):
        with started(data, fallback, candidate.command, port, INDEX_TTL="600",
                     **candidate.env) as server:
            warm(server, big_file)
            for project in PAGES.values():  # every worker of every candidate warm, as in use
                measure.wrk(f"{server.index_url}{project}/", server.process.pid, seconds=2)  # type: ignore[union-attr]
            mbs = measure.throughput(f"{server.url}{big_file}")
            rows.append(Row(f"cached file ({big_file.rsplit('/', 1)[1]}), MB/s: {candidate.label}",
                            f"{mbs:,.0f}", f"{ref_mbs:,.0f}", f"≥ 0.95x (here {mbs / ref_mbs:.2f}x)",
                            "yes" if mbs >= 0.95 * ref_mbs else "**no**"))
            for label, project in PAGES.items():
                load = measure.wrk(f"{server.index_url}{project}/", server.process.pid,  # type: ignore[union-attr]
                                   seconds=seconds)
                rps, share = TARGETS[label]
                ok = load.rps >= rps and load.rps >= share * ref[label].rps and load.p99_ms < 20
                rows.append(Row(f"{label} page, INDEX_TTL=600: {candidate.label}", _load(load),
                                _load(ref[label]), f"≥ {rps:,} and ≥ {share:.2f}x, p99 < 20 ms "
                                f"(here {load.rps / ref[label].rps:.2f}x)",
                                "yes" if ok else "**no**"))
    return rows


def mixed_requests(server: HavartiServer, count: int, files: list[str]) -> None:
    """``count`` requests, as installers and people send them: pages, files, metadata, health, UI."""
    paths = []
    for project in PAGES.values():
        paths += [(f"/simple/{project}/", measure.PIP_ACCEPT), (f"/simple/{project}/", "text/html")]
    paths += [(f, "*/*") for f in files]
    paths += [("/health", "*/*"), ("/simple/", measure.PIP_ACCEPT), ("/metrics", "*/*"),
              ("/", "text/html"), (f"/projects/{reference.SMALL_PROJECT}/", "text/html")]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for i in range(count):
            path, accept = paths[i % len(paths)]
            client.get(path, headers={"Accept": accept}).raise_for_status()


def processes(pid: int, workers: int = 0) -> list[tuple[str, float, float]]:
    """(role, RSS MB, PSS MB) of a server's master and its workers (waiting for ``workers``)."""
    root = psutil.Process(pid)
    deadline = time.monotonic() + 30
    while len(root.children(recursive=True)) < workers and time.monotonic() < deadline:
        time.sleep(0.2)
    if workers:
        time.sleep(1)  # the last one's imports done
    found = []
    for index, proc in enumerate([root, *root.children(recursive=True)]):
        info = proc.memory_full_info()
        found.append(("master" if index == 0 else f"worker {index}", info.rss / 2**20,
                      getattr(info, "pss", info.rss) / 2**20))
    return found


def memory_rows(fallback: str, big_file: str, small_file: str) -> list[Row]:
    """Each web process's RSS and PSS at boot and after 1,000 mixed requests, both command lines.

    The mixed requests start cold: the first ones fetch and parse the upstream pages and
    cache the files, as a fresh server's first installs do.
    """
    rows = []
    py = sys.executable
    for label, command, count, env in (
            ("havarti serve, 2 workers", None, 2, {}),
            ("havarti serve, WEB_SERVER=granian, 2 workers", None, 2, {"WEB_SERVER": "granian"}),
            ("seed line (-w 3 --preload)", [py, "-m", "gunicorn", "-w", "3", "--preload", "-b",
                                            "127.0.0.1:{port}", "havarti:app"], 3, {})):
        port = free_port()
        line = [part.format(port=port) for part in command] if command else None
        data = WORK / "memory"
        shutil.rmtree(data, ignore_errors=True)
        with started(data, fallback, line, port, INDEX_TTL="600", **env) as server:
            boot = processes(server.process.pid, count)  # type: ignore[union-attr]
            mixed_requests(server, 1000, [big_file, small_file, f"{small_file}.metadata"])
            procs = processes(server.process.pid)  # type: ignore[union-attr]
        for when, found in (("at boot", boot), ("after 1,000 mixed requests", procs)):
            workers = [p for p in found if p[0] != "master"]
            rss, pss = sum(p[1] for p in found), sum(p[2] for p in found)
            biggest = max(p[1] for p in workers)
            detail = ", ".join(f"{role} {r:.0f} ({p:.0f})" for role, r, p in found)
            last = when != "at boot"
            if command is None:
                rows.append(Row(f"largest web worker RSS (PSS), MB, {when}: {label}",
                                f"{biggest:.0f} ({max(p[2] for p in workers):.0f})", "–",
                                "≤ 60" if last else "report",
                                ("yes" if biggest <= 60 else "**no**") if last else "–"))
            rows.append(Row(f"summed RSS (PSS), MB, {when}: {label} [{detail}]",
                            f"{rss:.0f} ({pss:.0f})", "–",
                            "≤ 150" if last and command is None else "report",
                            ("yes" if rss <= 150 else "**no**") if last and command is None else "–"))
    return rows


def slow_client_rows(fallback: str, slow_file: str) -> list[Row]:
    """A page during six slow downloads, and /health during 160 slow heads + 40 stalled uploads."""
    rows = []
    py = sys.executable
    for label, command in (("seed line (-w 3 --preload)", [py, "-m", "gunicorn", "-w", "3", "--preload",
                                                           "-b", "127.0.0.1:{port}", "havarti:app"]),
                           ("havarti serve", None)):
        port = free_port()
        line = [part.format(port=port) for part in command] if command else None
        with started(WORK / "slow", fallback, line, port) as server:
            warm(server, slow_file)
            page = f"{server.index_url}{reference.SMALL_PROJECT}/"
            before = probe(page, 20, interval=0.05, headers={"Accept": measure.PIP_ACCEPT})
            slow = SlowClients("127.0.0.1", port, seconds=10)
            slow.slow_downloads(6, slow_file, rate=50_000)
            time.sleep(1.5)
            during = probe(page, 20, interval=0.25, headers={"Accept": measure.PIP_ACCEPT})
            slow.join()
            delay = during.median - before.median
            rows.append(Row(f"page during 6 slow downloads (50 kB/s) of a cached file: {label}; "
                            "delay of the median (worst request), ms",
                            f"{delay * 1e3:.0f} ({during.worst * 1e3:.0f})", "–", "< 100",
                            "yes" if delay < 0.1 and during.answered == 20 else "**no**"))
            loris = SlowClients("127.0.0.1", port, seconds=12)
            loris.header_dribblers(160)
            loris.stalled_uploads(40, authorization="Basic aGF2YXJ0aTpiZW5jaA==")
            time.sleep(2)
            health = probe(f"{server.url}/health", 20, interval=0.25, timeout=5)
            loris.join()
            rows.append(Row(f"/health while 200 slow connections are open (160 slow heads, 40 stalled uploads): {label}, "
                            "answered, worst ms", f"{health.answered}/20, {health.worst * 1e3:.0f}", "–",
                            "all, < 1,000", "yes" if health.answered == 20 and health.worst < 1 else "**no**"))
    return rows


def rows(nginx: reference.Nginx, fallback: str, big_file: str, small_file: str,
         seconds: int) -> list[Row]:
    """Every figure above; ``big_file`` (cached, then downloaded slowly) and ``small_file`` are paths."""
    return (page_rows(nginx, fallback, big_file, seconds) + memory_rows(fallback, big_file, small_file)
            + slow_client_rows(fallback, big_file))


def render(found: list[Row], note: str) -> str:
    lines = [note, "", "| measure | Havarti | nginx (static file) | target | met |",
             "| --- | ---: | ---: | --- | --- |"]
    lines += [f"| {r.what} | {r.value} | {r.nginx} | {r.target} | {r.met} |" for r in found]
    return "\n".join(lines) + "\n"


def _load(load: measure.Load) -> str:
    timeouts = f" ({load.timeouts} timeouts)" if load.timeouts else ""
    return f"{load.rps:,.0f} \\| {load.p99_ms:.1f} ms \\| {load.cpu_us:,.0f} µs{timeouts}"


def build_reference() -> tuple[Path, str, str]:
    """A small index of its own: ``six``, a 16 MB wheel, the synthesized projects; (www, big, small)."""
    dists = WORK / "dists"
    dists.mkdir(parents=True, exist_ok=True)
    for dist in (test_dists.wheel(reference.SMALL_PROJECT, "1.16.0"),
                 test_dists.wheel(SLOW_WHEEL, "1.0", payload_size=16 * 2**20)):
        if not (dists / dist.filename).exists():
            dist.write(dists)
    reference.build_index(dists, WORK / "www")
    big = next(n for n in os.listdir(dists) if n.startswith(f"{SLOW_WHEEL}-"))
    small = next(n for n in os.listdir(dists) if n.startswith(f"{reference.SMALL_PROJECT}-"))
    return WORK / "www", f"/files/{SLOW_WHEEL}/{big}", f"/files/{reference.SMALL_PROJECT}/{small}"


def main() -> int:
    import argparse
    from datetime import UTC, datetime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per page")
    args = parser.parse_args()
    measure.ensure_tools()
    load_before = os.getloadavg()[0]
    started_at = time.monotonic()
    www, big_file, small_file = build_reference()
    nginx = reference.Nginx(www, WORK, free_port()).start()
    try:
        found = rows(nginx, f"{nginx.url}/simple/", big_file, small_file, args.seconds)
    finally:
        nginx.stop()
    note = (f"Serving, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
            f"Python {sys.version.split()[0]}, {time.monotonic() - started_at:.0f} s, load average "
            f"before/after {load_before:.1f}/{os.getloadavg()[0]:.1f}; wrk -c32 -t2 -d{args.seconds}s "
            "with pip's Accept; cells: req/s \\| p99 \\| server CPU per request.")
    table = render(found, note)
    print(table)
    (ROOT / "bench" / "serving-results.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

