"""Server-side render time of the web UI on a large index: the 100 ms targets.

A fixture of 50,000 projects (each with a file) and one private project with
5,000 files is written straight into a fresh database; then the pages are
rendered through the real Flask app (in-process, so the figures are the
server's own time, without network or browser) and timed.

    python bench/ui_bench.py                      # SQLite in a temp dir
    python bench/ui_bench.py --database-url postgresql://postgres@127.0.0.1:5432/havarti_bench
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

PROJECTS = 50_000
BIG_FILES = 5_000
TARGET_MS = 100.0


def build_fixture(settings, projects: int, big_files: int) -> None:  # type: ignore[no-untyped-def]
    from havarti.db import Database
    from havarti.db.models import ORIGIN_CACHED, ORIGIN_UPLOADED, File, Project

    db = Database(settings.database_url)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with db.engine.begin() as connection:
        rows = [{"id": i + 1, "name": f"project-{i:05d}", "display_name": f"Project-{i:05d}",
                 "private": i % 50 == 0, "serial": 1, "created": now} for i in range(projects)]
        rows.append({"id": projects + 1, "name": "big-project", "display_name": "big-project",
                     "private": True, "serial": 1, "created": now})
        connection.execute(insert(Project), rows)
        files = [{"project_id": i + 1, "filename": f"project_{i:05d}-1.0-py3-none-any.whl",
                  "version": "1.0", "packagetype": "bdist_wheel", "size": 1000 + i,
                  "sha256": f"{i:064x}", "yanked": False, "upload_time": now - timedelta(hours=i),
                  "origin": ORIGIN_UPLOADED if i % 50 == 0 else ORIGIN_CACHED,
                  "storage_key": f"k/{i}", "stored": True} for i in range(projects)]
        for n in range(big_files):
            version = f"{n // 5}.{n % 5}"
            files.append({"project_id": projects + 1,
                          "filename": f"big_project-{version}-py3-none-any.whl",
                          "version": version, "packagetype": "bdist_wheel", "size": 10_000 + n,
                          "sha256": f"{n + 10**6:064x}", "yanked": n % 97 == 0,
                          "yanked_reason": "bad build" if n % 97 == 0 else None,
                          "requires_python": ">=3.9", "upload_time": now - timedelta(minutes=n),
                          "origin": ORIGIN_UPLOADED, "storage_key": f"b/{n}", "stored": True,
                          "metadata_sha256": f"{n:064x}"})
        for start in range(0, len(files), 10_000):
            connection.execute(insert(File), files[start:start + 10_000])
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE"))
    db.dispose()
    print(f"fixture: {projects:,} projects, a project with {big_files:,} files "
          f"({time.perf_counter() - started:.1f} s to insert)")


def timed(client, path: str, runs: int) -> tuple[float, float, float, int]:  # type: ignore[no-untyped-def]
    """(first, median, p95) in ms and the page size."""
    samples = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        body = response.get_data()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status)
        size = len(body)
    ordered = sorted(samples[1:]) or samples
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return samples[0], statistics.median(ordered), p95, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: SQLite in a temp dir")
    parser.add_argument("--projects", type=int, default=PROJECTS)
    parser.add_argument("--files", type=int, default=BIG_FILES)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from havarti.config import load_settings
    from havarti.web import create_app
    from havarti.wiring import prepare

    with tempfile.TemporaryDirectory(prefix="havarti-ui-bench-") as tmp:
        env = {"PACKAGE_CACHE": str(Path(tmp) / "data"), "FALLBACK": "http://127.0.0.1:9/simple/",
               "UPSTREAM_TIMEOUT": "1"}
        if args.database_url:
            env["DB_URI"] = args.database_url
        settings = load_settings(env)
        if args.database_url:
            from sqlalchemy import create_engine

            engine = create_engine(settings.database_url)
            with engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
        prepare(settings)
        build_fixture(settings, args.projects, args.files)
        app = create_app(settings)
        client = app.test_client()
        pages = [
            ("/projects/", "project list, page 1"),
            ("/projects/?page=900", "project list, page 900"),
            ("/projects/?kind=private", "private projects"),
            ("/projects/?q=project-4", "search, prefix (10,000 matches)"),
            ("/projects/?q=123", "search, substring"),
            ("/projects/?q=no-such-thing", "search, no match"),
            ("/projects/big-project/", f"project page, {args.files:,} files"),
            ("/", "home"),
            ("/stats/", "stats"),
        ]
        print(f"{'page':<34} {'first':>8} {'median':>8} {'p95':>8} {'size':>9}")
        worst = 0.0
        for path, label in pages:
            first, median, p95, size = timed(client, path, args.runs)
            worst = max(worst, median)
            print(f"{label:<34} {first:7.1f}ms {median:7.1f}ms {p95:7.1f}ms {size / 1000:7.0f}KB")
        print(f"database: {settings.database_url.split('@')[-1].split('/')[0] or 'sqlite'}; "
              f"target < {TARGET_MS:.0f} ms median: {'met' if worst < TARGET_MS else 'MISSED'}")
        app.extensions["havarti"].get().close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
