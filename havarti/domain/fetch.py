"""Fetching a file from upstream into storage, verified, while clients read along.

The seed's rule for a miss is "mark it for caching, serve the package". One
download per file: it spools upstream bytes to a local file, hashing as they
arrive; every client asking meanwhile reads the spool as it grows. The last
byte is held back until the hash is verified, so on a mismatch or a broken
upstream stream every client's response is cut short (pip and uv fail loudly)
and nothing is stored. Only a verified file is written to storage, and only
then is its row committed.

Across processes, a lease in the database makes one process the downloader;
the others wait for its row, then serve from storage (DownloadState.ELSEWHERE). A lease
whose downloader died on this host is broken at once (see coordination.py).

A file belongs to the project its filename names, and a stored row is reused
only for that project and the sha256 the page promises: another project's page
cannot make Havarti serve its bytes under a name that is not its own.

A client's response starts only once upstream has sent its first bytes, so an
upstream that refuses, times out or answers an error is still a proper HTTP
error (502/504/404), not a broken 200.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from havarti.distributions import belongs_to
from havarti.domain.coordination import DownloadState, Leases, file_lease
from havarti.domain.ports import FileStore
from havarti.errors import DownloadFailed, UpstreamError
from havarti.records import FileDigests, HeldFile, PageFile
from havarti.storage import Digests, Storage, storage_key
from havarti.storage.base import CHUNK
from havarti.upstream.client import UpstreamClient

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
#: Spool files are named so: left behind by a killed process, start-up and `havarti gc` remove them.
SPOOL_PREFIX = "dl-"
#: The default MAX_FILE_SIZE.
MAX_FILE_SIZE = 5 * 10**9


@dataclass
class Download:
    """One file's download in this process, shared by every client reading it."""

    project: str
    file: PageFile
    spool: Path
    cond: threading.Condition = field(default_factory=threading.Condition)
    written: int = 0
    state: DownloadState = DownloadState.RUNNING
    #: The bytes matched the index: clients may have the last one, whatever storage does next.
    verified: bool = False
    error: str | None = None
    #: What made it fail, raised again to clients that have not been answered yet.
    failure: Exception | None = None
    row: HeldFile | None = None

    def readable(self) -> int:
        """Bytes a client may be sent now: all but the last until verified."""
        if self.verified or self.state == DownloadState.DONE:
            return self.written
        return max(0, self.written - 1)


class Fetcher:
    """Runs at most one download per file in this process; clients share it."""

    def __init__(self, files: FileStore, leases: Leases, storage: Storage,
                 upstream: UpstreamClient, spool_dir: Path,
                 max_file_size: int = MAX_FILE_SIZE,
                 on_fetched: Callable[[str, int], None] | None = None) -> None:
        self.files, self.leases = files, leases
        self.storage, self.upstream = storage, upstream
        #: Told (project, bytes) of every file fetched from upstream and stored, whoever
        #: asked for it: a client, a background download, prefetch (the stats page counts it).
        self.on_fetched = on_fetched
        self.spool_dir = spool_dir
        self.max_file_size = max_file_size
        self._downloads: dict[str, Download] = {}
        self._guard = threading.Lock()

    def _join(self, project: str, file: PageFile, read: bool) -> tuple[Download, BinaryIO | None]:
        """Join or start the download of ``file``; with ``read``, a handle on its spool."""
        with self._guard:
            download = self._downloads.get(file.filename)
            if download is None:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
                fd, spool = tempfile.mkstemp(dir=self.spool_dir, prefix=SPOOL_PREFIX)
                os.close(fd)
                download = Download(project, file, Path(spool))
                self._downloads[file.filename] = download
                threading.Thread(target=self._run, args=(download,), daemon=True,
                                 name=f"fetch {file.filename}").start()
            # Opened before the download can unlink the spool: the handle keeps it readable.
            return download, (open(download.spool, "rb") if read else None)

    def open(self, project: str, file: PageFile) -> tuple[Download, Iterator[bytes]]:
        """Join or start the download; return it and a reader, once upstream has sent bytes.

        Raises what the download failed with (UpstreamError, UpstreamNotFound,
        IntegrityError) when that happened before this client was sent anything.
        """
        download, handle = self._join(project, file, read=True)
        assert handle is not None
        with download.cond:
            while download.state == DownloadState.RUNNING and download.written == 0:
                download.cond.wait()
            # Failed before this client got a byte (a small file can fail verification
            # before its reader starts): it can still get a proper error status.
            failure = download.failure if download.state == DownloadState.FAILED else None
        if failure is not None:
            handle.close()
            raise failure
        return download, self._read(download, handle)

    def wait(self, timeout: float) -> bool:
        """Wait until this process's downloads have finished (stored or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._guard:
                running = list(self._downloads.values())
            if not running:
                return True
            with running[0].cond:
                running[0].cond.wait(timeout=0.05)
        return False

    def fetch(self, project: str, file: PageFile) -> HeldFile:
        """Download synchronously (jobs, prefetch); return the cached row."""
        download, _ = self._join(project, file, read=False)
        with download.cond:
            while download.state == DownloadState.RUNNING:
                download.cond.wait()
        if download.state == DownloadState.FAILED:
            raise DownloadFailed(download.error or "download failed")
        if download.row is None:
            raise DownloadFailed(f"{file.filename} was not stored")
        return download.row

    def _read(self, download: Download, handle: BinaryIO) -> Iterator[bytes]:
        with handle:
            sent = 0
            while True:
                with download.cond:
                    while download.state == DownloadState.RUNNING and download.readable() <= sent:
                        download.cond.wait(timeout=5)
                    state, limit = download.state, download.readable()
                if state == DownloadState.ELSEWHERE:
                    # Another process downloaded it: the rest comes from storage.
                    yield from self._from_storage(download, sent)
                    return
                while sent < limit:
                    data = handle.read(min(CHUNK, limit - sent))
                    if not data:
                        break
                    sent += len(data)
                    yield data
                if state == DownloadState.FAILED and not download.verified:
                    # After what was readable (never the last byte): the response has
                    # started, and only a short body tells the client it is bad.
                    raise DownloadFailed(download.error or "download failed")
                if (download.verified or state == DownloadState.DONE) and sent >= download.written:
                    return

    def _from_storage(self, download: Download, offset: int) -> Iterator[bytes]:
        row = download.row
        if row is None or not row.stored:
            raise DownloadFailed(f"{download.file.filename} was not cached by the other process")
        yield from self.storage.open(row.storage_key, offset)

    def _run(self, download: Download) -> None:
        file = download.file
        try:
            with self.leases.held(file_lease(file.filename), LEASE_SECONDS) as mine:
                if mine:
                    self._download(download)
            if not mine:
                self._wait_elsewhere(download)
        except Exception as exc:
            # The one log line of a failed download, however many clients were reading it.
            reason = " ".join((str(exc) or type(exc).__name__).split())
            log.warning("fetch-failed project=%s file=%s bytes=%d reason=%s", download.project,
                        file.filename, download.written, reason)
            with download.cond:
                download.state, download.error, download.failure = DownloadState.FAILED, reason, exc
                download.cond.notify_all()
        finally:
            with self._guard:
                self._downloads.pop(file.filename, None)
                try:
                    download.spool.unlink()
                except FileNotFoundError:
                    pass

    def _download(self, download: Download) -> None:
        file = download.file
        if not belongs_to(file.filename, download.project):
            raise UpstreamError(f"{file.filename} is not a file of {download.project}; not caching")
        existing = self._cached_row(download.project, file)
        if existing is not None:
            self._finish_from_row(download, existing)
            return
        if not file.sha256:
            raise UpstreamError(f"upstream gives no sha256 for {file.filename}; not caching")
        if file.size is not None and file.size > self.max_file_size:
            raise UpstreamError(f"{file.filename} is listed at {file.size} bytes, over "
                                f"MAX_FILE_SIZE ({self.max_file_size} bytes); not caching")
        started = time.monotonic()
        last_renew = started
        # Listed without a size, a file is still spooled only up to MAX_FILE_SIZE.
        with open(download.spool, "wb") as out, \
                self.upstream.stream(file.url, limit=self.max_file_size) as response:
            hasher = Digests(expect_sha256=file.sha256, expect_size=file.size)
            # As the network delivers them, not in CHUNKs: clients read along at once.
            for chunk in response.chunks():
                hasher.update(chunk)
                out.write(chunk)
                out.flush()
                with download.cond:
                    download.written = hasher.size
                    download.cond.notify_all()
                if time.monotonic() - last_renew > LEASE_SECONDS / 3:
                    self.leases.renew(file_lease(file.filename), LEASE_SECONDS)
                    last_renew = time.monotonic()
            hasher.verify()
        # Verified: clients get their last byte now, not after the storage write below.
        with download.cond:
            download.verified = True
            download.cond.notify_all()
        key = storage_key(file.sha256, file.filename)
        self.storage.adopt(key, download.spool, hasher.size)
        row = self._record(download.project, file, key, hasher)
        log.info("fetched project=%s file=%s bytes=%d seconds=%.3f", download.project,
                 file.filename, hasher.size, time.monotonic() - started)
        if self.on_fetched is not None:
            self.on_fetched(download.project, hasher.size)
        with download.cond:
            download.row = row
            download.state = DownloadState.DONE
            download.cond.notify_all()

    def _record(self, project: str, file: PageFile, key: str, hasher: Digests) -> HeldFile:
        digests = FileDigests(size=hasher.size, sha256=hasher.sha256.hexdigest(),
                              md5=hasher.md5.hexdigest(), blake2_256=hasher.blake2_256.hexdigest())
        return self.files.record_cached(project, file, key, digests)

    def _cached_row(self, project: str, file: PageFile) -> HeldFile | None:
        """The stored row of ``file``: same project, same sha256 as the page says; else None."""
        return self.files.stored_copy(project, file)

    def _finish_from_row(self, download: Download, row: HeldFile) -> None:
        with download.cond:
            download.row = row
            download.state = DownloadState.ELSEWHERE
            download.cond.notify_all()

    def _wait_elsewhere(self, download: Download) -> None:
        """Another process holds the lease: wait for its row, or take over if it dies."""
        filename = download.file.filename
        while True:
            row = self._cached_row(download.project, download.file)
            if row is not None:
                self._finish_from_row(download, row)
                return
            with self.leases.held(file_lease(filename), LEASE_SECONDS) as mine:
                if mine:
                    self._download(download)
            if mine:
                return
            time.sleep(0.1)

