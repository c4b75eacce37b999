"""Reading distribution files: names, and the core metadata inside them."""

from __future__ import annotations

import email.parser
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import PurePosixPath
from typing import BinaryIO

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)

from havarti.errors import InvalidUpload

SDIST_SUFFIXES = (".tar.gz", ".zip")
MAX_METADATA_SIZE = 10 * 2**20


@dataclass(frozen=True)
class DistName:
    project: NormalizedName
    version: str
    packagetype: str  # "bdist_wheel" or "sdist"


def parse_dist_filename(filename: str) -> DistName:
    """Split a wheel or sdist filename, or raise InvalidUpload saying why."""
    if not filename or "/" in filename or "\\" in filename or ".." in filename or "\0" in filename:
        raise InvalidUpload(f"invalid filename {filename!r}: no paths allowed")
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return DistName(name, str(version), "bdist_wheel")
        if filename.endswith(".tar.gz"):
            name, version = parse_sdist_filename(filename)
            return DistName(name, str(version), "sdist")
        if filename.endswith(".zip"):
            # Legacy zip sdists: same naming rule as .tar.gz.
            name, version = parse_sdist_filename(filename[:-4] + ".tar.gz")
            return DistName(name, str(version), "sdist")
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise InvalidUpload(f"invalid distribution filename {filename!r}: {exc}") from None
    raise InvalidUpload(f"invalid distribution filename {filename!r}: expected a .whl or .tar.gz")


def same_version(a: str, b: str) -> bool:
    try:
        return canonicalize_version(a, strip_trailing_zero=False) == canonicalize_version(
            b, strip_trailing_zero=False)
    except ValueError:
        # A number too long for int() (over 4,300 digits): no real version is.
        return a == b


def read_core_metadata(fileobj: BinaryIO, filename: str) -> bytes:
    """The METADATA (wheel) or PKG-INFO (sdist) bytes inside a distribution.

    Raises InvalidUpload when the archive is unreadable or holds no metadata.
    """
    fileobj.seek(0)
    try:
        if filename.endswith((".whl", ".zip")):
            return _from_zip(fileobj, filename)
        return _from_tar(fileobj)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        kind = "zip" if filename.endswith((".whl", ".zip")) else "tar.gz"
        raise InvalidUpload(f"{filename} is not a readable {kind} archive: {exc}") from None
    finally:
        fileobj.seek(0)


def _from_zip(fileobj: BinaryIO, filename: str) -> bytes:
    with zipfile.ZipFile(fileobj) as archive:
        names = archive.namelist()
        if filename.endswith(".whl"):
            wanted = [n for n in names if PurePosixPath(n).name == "METADATA"
                      and len(PurePosixPath(n).parts) == 2
                      and PurePosixPath(n).parts[0].endswith(".dist-info")]
        else:
            wanted = [n for n in names if PurePosixPath(n).name == "PKG-INFO"
                      and len(PurePosixPath(n).parts) == 2]
        if not wanted:
            raise InvalidUpload(f"{filename} holds no core metadata (METADATA / PKG-INFO)")
        info = archive.getinfo(wanted[0])
        if info.file_size > MAX_METADATA_SIZE:
            raise InvalidUpload(f"{filename}: core metadata is too large")
        return archive.read(info)


def _from_tar(fileobj: BinaryIO) -> bytes:
    with tarfile.open(fileobj=fileobj, mode="r:gz") as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                if member.size > MAX_METADATA_SIZE:
                    raise InvalidUpload("core metadata is too large")
                handle = archive.extractfile(member)
                assert handle is not None
                return handle.read()
    raise InvalidUpload("the sdist holds no PKG-INFO")


@dataclass(frozen=True)
class CoreMetadata:
    name: str
    version: str
    requires_python: str | None
    summary: str | None
    description: str | None
    description_content_type: str | None


def parse_core_metadata(raw: bytes) -> CoreMetadata:
    # Core metadata is UTF-8 (the email parser alone would read bytes as ASCII and turn
    # every other character into U+FFFD or a lone surrogate).
    msg: Message = email.parser.Parser().parsestr(raw.decode("utf-8", "replace"))
    payload = msg.get_payload() if not msg.is_multipart() else None
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    text = payload if isinstance(payload, str) and payload.strip() else str(msg.get("Description") or "")
    description = text.strip() or None
    return CoreMetadata(
        name=_header(msg, "Name") or "",
        version=_header(msg, "Version") or "",
        requires_python=_header(msg, "Requires-Python"),
        summary=_header(msg, "Summary"),
        description=description,
        description_content_type=_header(msg, "Description-Content-Type"),
    )


def _header(msg: Message, name: str) -> str | None:
    """A header's value on one line (a folded header's line breaks become spaces), or None."""
    value = msg.get(name)
    return " ".join(str(value).split()) or None if value is not None else None


def normalized(name: str) -> NormalizedName:
    return canonicalize_name(name)
