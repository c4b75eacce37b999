"""The storage interface every backend implements, and its errors."""

from __future__ import annotations

import builtins
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20


class StorageError(Exception):
    """The backend failed (unreachable, refused, out of space)."""


class ObjectNotFound(StorageError, FileNotFoundError):
    """No object under that key."""


class StorageFull(StorageError):
    """No space left where the backend writes (a local disk); reads still work."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class LocalPath:
    """A backend that keeps objects as plain files can hand out the path (for sendfile)."""

    path: str


@dataclass(frozen=True)
class StoredObject:
    """One object as a listing shows it."""

    key: str
    size: int
    #: When it was written (aware UTC), where the backend says.
    modified: datetime | None = None


class Storage(ABC):
    """Objects under keys Havarti builds (never raw request input).

    Writes are atomic: a reader never sees a partial object under the final key,
    and a stream that raises while being read leaves nothing behind.
    """

    name: str = "storage"

    @abstractmethod
    def write(self, key: str, stream: Readable, size: int | None = None) -> int:
        """Store everything ``stream`` yields under ``key``; return the byte count."""

    def adopt(self, key: str, path: Path, size: int) -> None:
        """Store the finished local file ``path`` under ``key``; it may be moved, not copied."""
        with open(path, "rb") as spooled:
            self.write(key, spooled, size)

    @abstractmethod
    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start`` to ``end`` (inclusive; ``None`` = to the end)."""

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's byte count; ObjectNotFound if there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """Yield ``(key, size)`` of every object under ``prefix``."""
        for item in self.objects(prefix):
            yield item.key, item.size

    @abstractmethod
    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object under ``prefix``, with its size and modification time."""

    def remove_temporaries(self, older_than: datetime,
                           dry_run: bool = False) -> builtins.list[tuple[str, int]]:
        """Delete this backend's own partial writes older than ``older_than`` (left by a
        killed process); return (name, size) of each. Most backends leave none."""
        return []

    def url(self, key: str, filename: str, expires: int = 300) -> str | None:
        """A direct, short-lived URL clients may be redirected to, or None."""
        return None

    def local_path(self, key: str) -> LocalPath | None:
        """The object's path on this machine's disk, when the backend has one."""
        return None

    def ensure_ready(self) -> str | None:
        """Create the bucket/container if missing; return a message if it was created."""
        return None

    def check(self) -> str:
        """Verify credentials and access; return a short description or raise StorageError."""
        return self.name

    def read_bytes(self, key: str) -> bytes:
        return b"".join(self.open(key))


class Digests:
    """sha256, md5 and blake2b-256 of bytes seen so far; ``verify`` checks the promise."""

    def __init__(self, expect_sha256: str | None = None, expect_size: int | None = None) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.blake2_256 = hashlib.blake2b(digest_size=32)
        self.size = 0
        self.expect_sha256 = expect_sha256
        self.expect_size = expect_size

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        self.md5.update(data)
        self.blake2_256.update(data)
        self.size += len(data)
        if self.expect_size is not None and self.size > self.expect_size:
            raise IntegrityError(f"more bytes than the expected {self.expect_size}")

    def verify(self) -> None:
        if self.expect_size is not None and self.size != self.expect_size:
            raise IntegrityError(f"got {self.size} bytes, expected {self.expect_size}")
        if self.expect_sha256 is not None and self.sha256.hexdigest() != self.expect_sha256.lower():
            raise IntegrityError(
                f"sha256 {self.sha256.hexdigest()} does not match the expected {self.expect_sha256}")


class HashingReader:
    """Wraps a stream, hashing what passes, and verifies ``digests`` at the end.

    Because the raise happens while the backend is still reading, an atomic backend
    discards the object: nothing unverified is ever stored.
    """

    def __init__(self, stream: Readable, digests: Digests) -> None:
        self.stream = stream
        self.digests = digests

    def read(self, size: int = -1, /) -> bytes:
        data = self.stream.read(size)
        if data:
            self.digests.update(data)
        elif size != 0:
            self.digests.verify()
        return data


class IntegrityError(Exception):
    """Bytes did not match the size or hash they were promised to have."""


class Drain:
    """A stream adapter for SDKs that stop reading at a byte count or a short read.

    ``read(n)`` returns ``n`` bytes unless the stream ended, and it always reads on to
    the stream's end-of-file, so a :class:`HashingReader` underneath gets to verify
    before the SDK finishes the object. It counts bytes and keeps what the stream
    raised, because some SDKs wrap exceptions from their worker threads.
    """

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.count = 0
        self.error: BaseException | None = None
        self._eof = False

    def read(self, size: int = -1, /) -> bytes:
        if self._eof:
            return b""
        want = CHUNK if size is None or size < 0 else size
        parts: list[bytes] = []
        got = 0
        try:
            while got < want or size < 0:
                data = self.stream.read(min(CHUNK, want - got) if size >= 0 else CHUNK)
                if not data:
                    self._eof = True
                    break
                parts.append(data)
                got += len(data)
        except BaseException as exc:
            self.error = exc
            raise
        self.count += got
        return b"".join(parts)

    def chunks(self) -> Iterator[bytes]:
        """The stream as CHUNK-sized pieces (for SDKs that take an iterable body)."""
        while data := self.read(CHUNK):
            yield data


def storage_key(sha256: str, filename: str) -> str:
    """Content-addressed key: identical bytes share a key, so retries are idempotent."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}/{filename}"


def metadata_key(metadata_sha256: str, filename: str) -> str:
    """Key of a distribution's core metadata file (PEP 658), also content-addressed."""
    return storage_key(metadata_sha256, filename + ".metadata")
