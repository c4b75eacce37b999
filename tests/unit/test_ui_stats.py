"""Download counters, the stats page and its chart, /metrics, /ready and the request log."""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from havarti.db.models import DailyCount
from havarti.db.stats import DailyCounts
from havarti.domain import stats
from havarti.domain.stats import CACHE_HIT, UPSTREAM, StatsRecorder
from havarti.web import charts
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.webapp import WebApp, make_webapp


@pytest.fixture
def web(tmp_path, upstream: FakeIndex) -> WebApp:
    return make_webapp(tmp_path / "data", upstream.url)


def rows(db) -> list[tuple[str, str, int, int]]:
    with db.session() as session:
        return [tuple(r) for r in session.execute(
            select(DailyCount.project, DailyCount.kind, DailyCount.count, DailyCount.bytes).order_by(DailyCount.project))]


def test_recorder_counts_in_memory_and_writes_in_batches(web):
    db = web.db
    recorder = StatsRecorder(DailyCounts(db), interval=3600)
    for _ in range(3):
        recorder.record("brie", CACHE_HIT, 100)
    recorder.record("brie", UPSTREAM, 7)
    assert rows(db) == []  # nothing written per request
    assert recorder.flush() == 2
    assert sorted(rows(db)) == [("brie", CACHE_HIT, 3, 300), ("brie", UPSTREAM, 1, 7)]
    # A second process's recorder adds to the same rows (the upsert path).
    other = StatsRecorder(DailyCounts(db), interval=3600)
    other.record("brie", CACHE_HIT, 1)
    other.flush()
    assert ("brie", CACHE_HIT, 4, 301) in rows(db)
    assert recorder.flush() == 0


def test_downloads_are_counted_as_upstream_then_cache(web, upstream):
    wheel = dists.wheel("camembert", "1.0")
    upstream.publish("camembert", wheel, "1.0")
    web.download("/files/camembert/camembert-1.0-py3-none-any.whl")
    web.download("/files/camembert/camembert-1.0-py3-none-any.whl")
    web.download("/files/camembert/camembert-1.0-py3-none-any.whl")
    page = web.client.get("/stats/").get_data(as_text=True)
    assert re.search(r'id="total-hits">2<', page)
    assert re.search(r'id="total-upstream">1<', page)
    overview = stats.overview(DailyCounts(web.db))
    assert overview.bytes_saved == 2 * len(wheel.data)
    assert overview.top[0].project == "camembert" and overview.top[0].requests == 3
    assert overview.storage_cached == len(wheel.data) and overview.files_cached == 1
    # The chart has one bar per series for today, the hit bar twice the miss bar's height.
    bars = re.findall(r'<rect class="(hit|miss)" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"',
                      page)
    heights = {series: float(h) for series, h in bars}
    assert heights["hit"] == pytest.approx(2 * heights["miss"], rel=0.02)


def test_overview_covers_thirty_days_zero_filled(web):
    db = web.db
    today = date(2026, 3, 31)
    with db.session() as session:
        session.add(DailyCount(day="2026-03-02", project="old", kind=CACHE_HIT, count=5, bytes=50))
        session.add(DailyCount(day="2026-03-01", project="older", kind=CACHE_HIT, count=9, bytes=90))
    overview = stats.overview(DailyCounts(db), today=today)
    assert len(overview.days) == 30
    assert overview.days[0].day == today - timedelta(days=29)
    assert overview.days[0].cache_hits == 5 and overview.cache_hits == 5
    assert [p.project for p in overview.top] == ["old"]


def test_chart_scales_to_round_maximum_and_skips_empty_days():
    days = [stats.Day(date(2026, 1, 1) + timedelta(days=i), cache_hits=i, upstream=1 if i else 0)
            for i in range(30)]
    chart = charts.requests_chart(days)
    # 29 + 1 = 30 at most: four round steps of 10 above it.
    assert [t.label for t in chart.ticks] == ["0", "10", "20", "30", "40"]
    assert len([b for b in chart.bars if b.series == "hit"]) == 29
    assert all(b.height > 0 for b in chart.bars)
    assert max(b.y + b.height for b in chart.bars) <= chart.bottom


def test_metrics_count_routes_and_cache_results(web, upstream):
    upstream.publish("roquefort", dists.wheel("roquefort", "1.0"), "1.0")
    web.download("/files/roquefort/roquefort-1.0-py3-none-any.whl")
    web.download("/files/roquefort/roquefort-1.0-py3-none-any.whl")
    web.client.get("/projects/?page=bad")
    response = web.client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    body = response.get_data(as_text=True)

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)", body)
        assert match, pattern
        return float(match.group(1))

    assert value(r'havarti_http_requests_total\{method="GET",route="/projects/",status="400"\}') >= 1
    assert value(r'havarti_file_requests_total\{result="hit"\}') >= 1
    assert value(r'havarti_file_requests_total\{result="miss"\}') >= 1
    assert value(r'havarti_upstream_request_duration_seconds_count\{kind="file"\}') >= 1
    assert value(r"havarti_job_queue_depth") >= 0


def test_ready_names_the_failing_check_and_no_paths(tmp_path, upstream):
    upstream.down()
    web = make_webapp(tmp_path / "data", upstream.url)
    response = web.client.get("/ready")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["upstream"]["ok"] is False and checks["database"]["ok"] is True
    # Open to anyone: no file paths, no upstream or database URLs.
    assert str(tmp_path) not in response.text and "127.0.0.1" not in response.text


def test_request_log_is_one_key_value_line(tmp_path, upstream, caplog):
    web = make_webapp(tmp_path / "data", upstream.url, DEBUG="true")
    with caplog.at_level(logging.DEBUG, logger="havarti.access"):
        web.client.get("/projects/?q=x")
    lines = [r.getMessage() for r in caplog.records if r.name == "havarti.access"]
    assert len(lines) == 1
    fields = dict(part.split("=", 1) for part in lines[0].split()[1:])
    assert fields["path"] == "/projects/" and fields["status"] == "200"
    assert fields["route"] == "/projects/" and float(fields["ms"]) >= 0


def choose_metrics_folder(package_cache, env: dict[str, str], before: str = "") -> tuple[str, str]:
    """configure() in a fresh interpreter: the folder chosen, and prometheus-client's mode."""
    import os
    import subprocess
    import sys

    script = ("import sys, pathlib, tempfile; import havarti.metrics as m; " + before +
              "print(m.configure(pathlib.Path(sys.argv[1]))); "
              "import prometheus_client.values as v; print(v.ValueClass.__name__)")
    environ = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run([sys.executable, "-c", script, str(package_cache)],
                            capture_output=True, text=True, env={**environ, **env})
    assert result.returncode == 0, result.stderr
    chosen, value_class = result.stdout.split()
    return chosen, value_class


def test_metrics_folder_is_chosen_before_import_and_dead_workers_files_go(tmp_path):
    import os

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999999.db").write_bytes(b"")  # no such process
    (folder / f"counter_{os.getpid()}.db").write_bytes(b"")  # alive: this test
    chosen, value_class = choose_metrics_folder(tmp_path / "data",
                                                {"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    assert chosen == str(folder)  # the operator's choice is honoured
    assert value_class == "MmapedValue"  # multiprocess mode, not the per-process MutexValue
    assert sorted(p.name for p in folder.iterdir()) == [f"counter_{os.getpid()}.db"]


@pytest.fixture
def metrics_folders_removed(tmp_path):
    """The default metrics folders a test's configure() made (in /dev/shm) go afterwards."""
    import shutil

    from havarti.metrics import default_folders

    yield
    for folder in default_folders(tmp_path):
        shutil.rmtree(folder, ignore_errors=True)


def test_metrics_files_are_never_on_the_data_disk(tmp_path, metrics_folders_removed):
    from havarti.metrics import default_folders

    chosen, value_class = choose_metrics_folder(tmp_path, {})
    assert chosen == str(default_folders(tmp_path)[0])
    assert not chosen.startswith(str(tmp_path))
    assert value_class == "MmapedValue"
    # Another data directory, another Havarti: another folder.
    assert default_folders(tmp_path / "other")[0] != default_folders(tmp_path)[0]


def test_an_unusable_metrics_folder_falls_back_safely(tmp_path, metrics_folders_removed):
    import os

    from havarti.metrics import default_folders

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    # The operator's folder cannot be made: the default one is used.
    chosen, _ = choose_metrics_folder(tmp_path, {"PROMETHEUS_MULTIPROC_DIR": str(blocked)})
    assert chosen == str(default_folders(tmp_path)[0])
    # No folder is usable at all: each process counts alone, and Havarti starts.
    nowhere = f"m.SHARED_MEMORY = pathlib.Path({str(blocked)!r}); tempfile.tempdir = {str(blocked)!r}; "
    chosen, value_class = choose_metrics_folder(tmp_path, {}, before=nowhere)
    assert (chosen, value_class) == ("None", "MutexValue")
    assert os.path.isfile(blocked)


def test_prefetched_and_background_downloads_count_as_fetched_from_upstream(web, upstream):
    # What `havarti prefetch` and a downloader worker run: the cache_file job, no client.
    wheel = dists.wheel("gruyere", "1.0")
    upstream.publish("gruyere", wheel, "1.0")
    web.index.cache_file("gruyere", wheel.filename)
    page = web.client.get("/stats/").get_data(as_text=True)
    assert re.search(r'id="total-upstream">1<', page)
    assert re.search(r'id="total-hits">0<', page)
    overview = stats.overview(DailyCounts(web.db))
    assert overview.upstream == 1 and overview.days[-1].bytes_upstream == len(wheel.data)
    # Not a request: the hit ratio and the top projects count requests only.
    assert overview.hit_ratio is None and overview.top == []
    home = web.client.get("/").get_data(as_text=True)
    assert re.search(r"Fetched from upstream \(30 days\)</dt><dd>1<", home)
    # Served afterwards from storage: one hit, still one file fetched.
    web.download(f"/files/gruyere/{wheel.filename}")
    web.client.get("/stats/")
    overview = stats.overview(DailyCounts(web.db))
    assert (overview.cache_hits, overview.upstream, overview.hit_ratio) == (1, 1, 1.0)
