"""localstorage: files on this machine's disk, under PACKAGE_CACHE/files."""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from havarti.storage.base import (
    CHUNK,
    Drain,
    LocalPath,
    ObjectNotFound,
    Readable,
    Storage,
    StorageError,
    StorageFull,
    StoredObject,
)

#: Partial writes are named so, under ``.tmp`` in the root.
TEMP_PREFIX = "w-"


class LocalStorage(Storage):
    name = "localstorage"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / ".tmp"

    def _path(self, key: str) -> Path:
        # Keys are built by Havarti; this guard keeps a bug from escaping the root.
        if key.startswith("/") or ".." in key.split("/") or "\\" in key or "\0" in key:
            raise ValueError(f"unsafe storage key {key!r}")
        return self.root / key

    def write(self, key: str, stream: Readable, size: int | None = None) -> int:
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix=TEMP_PREFIX)
        except OSError as exc:
            raise _error(exc, with_path=True) from None
        reader = Drain(stream)
        try:
            with os.fdopen(fd, "wb") as out:
                while data := reader.read(CHUNK):
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            # What the stream raised (a broken upstream) is the caller's, not a storage failure.
            if isinstance(exc, OSError) and exc is not reader.error:
                raise _error(exc) from None
            raise
        _fsync_dir(final.parent)
        return reader.count

    def adopt(self, key: str, path: Path, size: int) -> None:
        # A download's spool is already on this disk: a hard link, not a second copy of the
        # bytes (readers still reading the spool by its name keep it).
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as spooled:
                os.fsync(spooled.fileno())
            tmp = self.tmp / f"l-{os.getpid()}-{threading.get_ident()}-{path.name}"
            os.link(path, tmp)
            os.replace(tmp, final)
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                super().adopt(key, path, size)  # no hard links here: copy
                return
            raise _error(exc) from None
        _fsync_dir(final.parent)

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle = open(self._path(key), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        return _read_range(handle, start, end)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not (d == ".tmp" and dirpath == str(self.root))]
            for name in filenames:
                path = Path(dirpath, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        stat = path.stat()
                    except FileNotFoundError:
                        continue  # deleted while listed
                    yield StoredObject(key, stat.st_size,
                                       datetime.fromtimestamp(stat.st_mtime, UTC))

    def remove_temporaries(self, older_than: datetime,
                           dry_run: bool = False) -> list[tuple[str, int]]:
        """Partial writes (``.tmp/w-*``) a killed process left: its writes fsync and rename."""
        removed = []
        for path in self.tmp.glob(f"{TEMP_PREFIX}*") if self.tmp.is_dir() else ():
            try:
                stat = path.stat()
                if datetime.fromtimestamp(stat.st_mtime, UTC) < older_than:
                    if not dry_run:
                        path.unlink()
                    removed.append((path.name, stat.st_size))
            except FileNotFoundError:
                continue
        return removed

    def local_path(self, key: str) -> LocalPath | None:
        return LocalPath(str(self._path(key)))

    def ensure_ready(self) -> str | None:
        if self.root.is_dir():
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        return f"created {self.root}"

    def check(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")
        if disk_full(self.root):
            raise StorageFull("localstorage: no space left on device")
        return f"localstorage at {self.root}"


#: Free space below which a disk counts as full: not even one more file fits.
FULL_BELOW = 2**20


def disk_full(path: Path) -> bool:
    """Whether the filesystem holding ``path`` has (almost) no space left."""
    try:
        space = os.statvfs(path)
    except OSError:
        return False
    return space.f_bavail * space.f_frsize < FULL_BELOW


def _error(exc: OSError, with_path: bool = False) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("local storage: no space left on device")
    where = f": {exc.filename}" if with_path and exc.filename else ""
    return StorageError(f"local storage: {exc.strerror}{where}")


def _read_range(handle, start: int, end: int | None) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            data = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
