"""Building real, installable distributions for tests, in memory and fast."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Dist:
    filename: str
    data: bytes
    metadata: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.filename
        path.write_bytes(self.data)
        return path


def _module(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def core_metadata(name: str, version: str, requires_python: str | None = None,
                  requires: tuple[str, ...] = (), summary: str = "A test package",
                  description: str = "", description_content_type: str | None = None) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {summary}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    if description_content_type:
        lines.append(f"Description-Content-Type: {description_content_type}")
    text = "\n".join(lines) + "\n"
    if description:
        text += "\n" + description
    return text.encode()


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel(name: str, version: str, requires_python: str | None = None,
          requires: tuple[str, ...] = (), payload_size: int = 0, tag: str = "py3-none-any",
          **metadata_fields: Any) -> Dist:
    """A pure-Python wheel with module ``<name>`` that records its version."""
    module = _module(name)
    dist_info = f"{module}-{version}.dist-info"
    metadata = core_metadata(name, version, requires_python, requires, **metadata_fields)
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: havarti-tests\nRoot-Is-Purelib: true\nTag: {tag}\n".encode(),
    }
    if payload_size:
        # Incompressible bytes, so the file really is that large.
        files[f"{module}/payload.bin"] = _noise(payload_size, name + version)
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            archive.writestr(info, data)
    return Dist(f"{module}-{version}-{tag}.whl", buffer.getvalue(), metadata)


def sdist(name: str, version: str, requires_python: str | None = None,
          **metadata_fields: Any) -> Dist:
    """An sdist with PKG-INFO (not buildable: tests install wheels)."""
    module = _module(name)
    base = f"{module}-{version}"
    metadata = core_metadata(name, version, requires_python, **metadata_fields)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in {f"{base}/PKG-INFO": metadata,
                           f"{base}/{module}/__init__.py": f"__version__ = {version!r}\n".encode()}.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return Dist(f"{base}.tar.gz", buffer.getvalue(), metadata)


def _noise(size: int, seed: str) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


def gzip_bomb_sdist(name: str, version: str, inflated: int = 256 * 2**20) -> Dist:
    """An sdist whose PKG-INFO comes after ``inflated`` bytes of zeros (a few hundred kB gzipped)."""
    module = _module(name)
    base = f"{module}-{version}"
    metadata = core_metadata(name, version)
    buffer = io.BytesIO()
    # Zeros at level 9: about 1,000:1, the most gzip does.
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=9) as archive:
        filler = tarfile.TarInfo(f"{base}/zeros.bin")
        filler.size = inflated
        archive.addfile(filler, _Zeros(inflated))
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(metadata)
        archive.addfile(info, io.BytesIO(metadata))
    return Dist(f"{base}.tar.gz", buffer.getvalue(), metadata)


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count
