"""Copying every object from one backend to another, verified and resumable.

The path for a user who outgrows local disk: ``havarti storage copy --to STORAGE=s3storage ...``.
Keys are content-addressed (``aa/bb/<sha256>/<filename>``), so each copy is checked
against the sha256 in its key while it streams, and the target's atomic write
discards a copy that does not match. An object already at the target with the
same size was verified when it was written there, so a rerun skips it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from havarti.storage.base import Digests, HashingReader, IntegrityError, Storage, StorageError

_SHA256_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})/[^/]+$")


@dataclass
class CopyReport:
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


class _ChunkReader:
    """A ``read()`` over an iterator of chunks, reporting progress."""

    def __init__(self, chunks: Iterator[bytes], progress: Callable[[int], None]) -> None:
        self.chunks = chunks
        self.progress = progress
        self.buffer = b""

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, b"")
            if not chunk:
                break
            self.buffer += chunk
        if size < 0:
            data, self.buffer = self.buffer, b""
        else:
            data, self.buffer = self.buffer[:size], self.buffer[size:]
        self.progress(len(data))
        return data


def expected_sha256(key: str) -> str | None:
    match = _SHA256_KEY.match(key)
    return match.group(1) if match else None


def copy_object(source: Storage, target: Storage, key: str, size: int,
                progress: Callable[[int], None] = lambda n: None) -> bool:
    """Copy one object unless the target has it already; True if copied."""
    if target.exists(key) and target.size(key) == size:
        progress(size)
        return False
    digests = Digests(expect_sha256=expected_sha256(key), expect_size=size)
    target.write(key, HashingReader(_ChunkReader(source.open(key), progress), digests), size)
    return True


def copy_all(source: Storage, target: Storage,
             objects: list[tuple[str, int]] | None = None,
             progress: Callable[[int], None] = lambda n: None,
             on_object: Callable[[str], None] = lambda key: None) -> CopyReport:
    """Copy every object of ``source`` (or ``objects``) to ``target``; failures are reported, not raised."""
    report = CopyReport()
    for key, size in objects if objects is not None else list(source.list()):
        on_object(key)
        try:
            if copy_object(source, target, key, size, progress):
                report.copied += 1
                report.copied_bytes += size
            else:
                report.skipped += 1
        except (IntegrityError, StorageError) as exc:
            report.failed.append((key, str(exc) or type(exc).__name__))
    return report
