"""Download counters for the stats page: counted in memory, written to the database in batches.

A file request must not cost a database write: :class:`StatsRecorder` adds to
a dictionary under a lock, and a background thread upserts the day's totals
into ``daily_stats`` every few seconds (and once more when the process exits).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from havarti.domain.ports import StatsStore

log = logging.getLogger(__name__)

#: Kinds of count. A file request served from storage, or not (a miss: streamed along its
#: download, or redirected upstream); and a file fetched from upstream into storage, by
#: whoever asked: a client's miss, a background download, prefetch, a downloader worker.
CACHE_HIT = "cache_hit"
UPSTREAM = "upstream"
FETCHED = "fetched"
#: The kinds that are client requests (the hit ratio, the top projects).
REQUESTS = (CACHE_HIT, UPSTREAM)
FLUSH_SECONDS = 2.0


class StatsRecorder:
    """Counts file requests per (day, project, kind) and flushes them in batches."""

    def __init__(self, counts: StatsStore, interval: float = FLUSH_SECONDS) -> None:
        self.counts = counts
        self.interval = interval
        self._pending: defaultdict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._pid = 0

    def record(self, project: str, kind: str, size: int) -> None:
        """Count one ``kind`` (CACHE_HIT, UPSTREAM or FETCHED) of ``size`` bytes."""
        day = datetime.now(UTC).date().isoformat()
        with self._guard:
            entry = self._pending[(day, project, kind)]
            entry[0] += 1
            entry[1] += size
            if self._pid != os.getpid():
                # First record in this process (gunicorn forks after the app is built).
                self._pid = os.getpid()
                self._start()

    def _start(self) -> None:
        thread = threading.Thread(target=self._loop, name="havarti-stats", daemon=True)
        thread.start()
        atexit.register(self._flush_logged)

    def _loop(self) -> None:
        while not self._wake.wait(self.interval):
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 -- counts are kept for the next try
            log.warning("stats-flush-failed reason=%s", " ".join(str(exc).split())[:200])

    def flush(self) -> int:
        """Write the pending counts; returns how many rows were upserted."""
        with self._guard:
            batch, self._pending = self._pending, defaultdict(lambda: [0, 0])
        if not batch:
            return 0
        try:
            self.counts.add(batch)
        except Exception:
            with self._guard:
                for key, (count, size) in batch.items():
                    self._pending[key][0] += count
                    self._pending[key][1] += size
            raise
        log.debug("stats-flush rows=%d", len(batch))
        return len(batch)

@dataclass(frozen=True)
class Day:
    """One day's download counts and bytes."""

    day: date
    #: Requests served from storage.
    cache_hits: int = 0
    #: Files fetched from upstream into storage (whoever asked).
    upstream: int = 0
    bytes_saved: int = 0
    bytes_upstream: int = 0
    #: Requests not served from storage (streamed along a download, or redirected).
    misses: int = 0


@dataclass(frozen=True)
class ProjectCount:
    """One project's requests over the period shown."""

    project: str
    requests: int
    cache_hits: int
    bytes: int


@dataclass(frozen=True)
class Overview:
    """What the stats page shows."""

    days: list[Day]
    top: list[ProjectCount]
    storage_private: int
    storage_cached: int
    files_private: int
    files_cached: int

    @property
    def cache_hits(self) -> int:
        """Requests served from storage over the period."""
        return sum(d.cache_hits for d in self.days)

    @property
    def upstream(self) -> int:
        """Requests that went upstream over the period."""
        return sum(d.upstream for d in self.days)

    @property
    def bytes_saved(self) -> int:
        """Bytes served from storage, not fetched again, over the period."""
        return sum(d.bytes_saved for d in self.days)

    @property
    def misses(self) -> int:
        """File requests not served from storage over the period."""
        return sum(d.misses for d in self.days)

    @property
    def hit_ratio(self) -> float | None:
        """Of the file requests, the share served from storage; None without any."""
        total = self.cache_hits + self.misses
        return self.cache_hits / total if total else None


def overview(counts: StatsStore, days: int = 30, top: int = 10,
             today: date | None = None) -> Overview:
    """Daily totals for the last ``days`` days (oldest first), the top projects and storage."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    per_day = counts.per_day(first)
    tops = counts.top_projects(first, CACHE_HIT, top, kinds=REQUESTS)
    by_origin = counts.stored_by_origin()
    totals: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for day_text, kind, count, size in per_day:
        totals[day_text][kind] = (count, size)
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        kinds = totals.get(day.isoformat(), {})
        hit, fetched = kinds.get(CACHE_HIT, (0, 0)), kinds.get(FETCHED, (0, 0))
        series.append(Day(day, hit[0], fetched[0], hit[1], fetched[1],
                          misses=kinds.get(UPSTREAM, (0, 0))[0]))
    return Overview(
        days=series,
        top=[ProjectCount(p, n, h, b) for p, n, h, b in tops],
        storage_private=by_origin[True][1],
        storage_cached=by_origin[False][1],
        files_private=by_origin[True][0],
        files_cached=by_origin[False][0],
    )
