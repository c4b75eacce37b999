"""Reading distribution files: names, and the core metadata inside them."""

from __future__ import annotations

import email.parser
import gzip
import re
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from pathlib import PurePosixPath
from typing import BinaryIO, cast

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)

from havarti.errors import InvalidRequest, InvalidUpload

SDIST_SUFFIXES = (".tar.gz", ".zip")
MAX_METADATA_SIZE = 10 * 2**20
#: Looking for an sdist's PKG-INFO decompresses at most this much, plus SDIST_RATIO times the
#: compressed size: real sdists are source text (5-10x), a gzip bomb is ~1,000x.
SDIST_SCAN_FLOOR = 64 * 2**20
SDIST_RATIO = 32
#: ... and reads at most this many tar members (each costs memory in tarfile's member list).
SDIST_MAX_MEMBERS = 100_000


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


_SEPARATORS = re.compile(r"[-_.]+")


def dist_version(filename: str, project: str) -> str | None:
    """The version of ``filename`` when it is a wheel or sdist of ``project`` (normalised), else None.

    Cheap by design: it runs for every file of every upstream page.
    """
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        if len(parts) not in (5, 6):
            return None
        name, version = parts[0], parts[1]
    else:
        stem = next((filename[: -len(s)] for s in SDIST_SUFFIXES if filename.endswith(s)), None)
        if stem is None:
            return None
        # An sdist's name may hold hyphens: the version starts after the hyphen that ends the name.
        at = stem.find("-")
        while at != -1 and (_SEPARATORS.sub("-", stem[:at]).lower() != project
                            or not stem[at + 1:at + 2].isdigit()):
            at = stem.find("-", at + 1)
        if at == -1:
            return None
        name, version = stem[:at], stem[at + 1:]
    # A version starts with a digit (PEP 440): otherwise ``foo-bar-1.0.tar.gz`` would pass as
    # foo's version "bar-1.0" and let foo's page serve a file of project foo-bar.
    if not version[:1].isdigit() or _SEPARATORS.sub("-", name).lower() != project:
        return None
    return version


def belongs_to(filename: str, project: str) -> bool:
    """True when ``filename`` is a wheel or sdist of ``project`` (any spelling of the name).

    A file belongs to the project its filename names: an upstream page that lists
    another project's filename (or something that is no distribution name) must not
    make Havarti fetch and keep it, whatever hash the page gives.
    """
    return dist_version(filename, canonicalize_name(project)) is not None


def normalized_filename(filename: str) -> str:
    """``filename`` with its project name and version canonicalised, as PyPI compares them.

    ``Foo_Bar-1.0-py3-none-any.whl``, ``foo.bar-1.0.0-py3-none-any.whl`` and
    ``foo_bar-1.0-py3-none-any.whl`` all give ``foo-bar-1-py3-none-any.whl``: one file to
    an installer, so only one of them may be uploaded. Raises InvalidUpload like
    :func:`parse_dist_filename`.
    """
    dist = parse_dist_filename(filename)
    version = canonicalize_version(dist.version)
    if dist.packagetype == "bdist_wheel":
        # The build tag and the compatibility tags, as written (tags are case-sensitive).
        rest = filename[:-len(".whl")].split("-", 2)[2]
        return f"{dist.project}-{version}-{rest}.whl"
    suffix = ".zip" if filename.endswith(".zip") else ".tar.gz"
    return f"{dist.project}-{version}{suffix}"


def same_version(a: str, b: str) -> bool:
    try:
        return canonicalize_version(a, strip_trailing_zero=False) == canonicalize_version(
            b, strip_trailing_zero=False)
    except ValueError:
        # A number too long for int() (over 4,300 digits): no real version is.
        return a == b


def read_core_metadata(fileobj: BinaryIO, filename: str,
                       max_members: int = SDIST_MAX_MEMBERS) -> bytes:
    """The METADATA (wheel) or PKG-INFO (sdist) bytes inside a distribution.

    Raises InvalidUpload when the archive is unreadable or holds no metadata, or
    when an sdist would take more than its bound to search (see SDIST_RATIO).
    """
    fileobj.seek(0)
    try:
        if filename.endswith((".whl", ".zip")):
            return _from_zip(fileobj, filename)
        return _from_tar(fileobj, max_members)
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


def _from_tar(fileobj: BinaryIO, max_members: int) -> bytes:
    compressed = fileobj.seek(0, 2)
    fileobj.seek(0)
    # PKG-INFO may come last (hatchling writes it last): the scan is bounded in
    # decompressed bytes and in members, never by what the archive claims.
    limit = SDIST_SCAN_FLOOR + SDIST_RATIO * compressed
    with gzip.GzipFile(fileobj=fileobj, mode="rb") as unzipped, \
            tarfile.open(fileobj=cast(BinaryIO, _Bounded(unzipped, limit)), mode="r|") as archive:
        for count, member in enumerate(archive, 1):
            if count > max_members:
                raise InvalidUpload(f"the sdist has more than {max_members} members "
                                    "before its PKG-INFO")
            parts = PurePosixPath(member.name).parts
            if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                if member.size > MAX_METADATA_SIZE:
                    raise InvalidUpload("core metadata is too large")
                handle = archive.extractfile(member)
                assert handle is not None
                return handle.read()
    raise InvalidUpload("the sdist holds no PKG-INFO")


class _Bounded:
    """A read-only stream that refuses to give more than ``limit`` bytes in all."""

    def __init__(self, stream: gzip.GzipFile, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.read_so_far = 0

    def read(self, size: int = -1) -> bytes:
        allowed = self.limit - self.read_so_far + 1
        data = self.stream.read(allowed if size is None or size < 0 else min(size, allowed))
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise InvalidUpload(f"the sdist decompresses to more than {self.limit} bytes "
                                "before its PKG-INFO (a gzip bomb?)")
        return data


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


#: PEP 508's project name rule (also what PEP 503 normalises).
PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*\*?$", re.I)


def _is_project_name(name: str) -> bool:
    return len(name) <= 255 and PROJECT_NAME.match(name) is not None


@dataclass(frozen=True)
class NamePattern:
    """A project name (``numpy``) or a prefix (``acme-*``), compared as PEP 503 normalises."""

    text: str

    @classmethod
    def parse(cls, raw: str) -> NamePattern:
        """The normalised pattern; InvalidRequest for anything but a name or ``prefix*``."""
        value = raw.strip()
        if not value or len(value) > 200 or not _PATTERN.match(value):
            raise InvalidRequest(f"{raw[:80]!r} is not a project name or a prefix such as acme-*")
        if not value.endswith("*") and not _is_project_name(value):
            raise InvalidRequest(f"{raw[:80]!r} is not a project name or a prefix such as acme-*")
        if value.endswith("*"):
            stem = value[:-1]
            tail = "-" if stem.endswith(("-", "_", ".")) else ""
            return cls(canonicalize_name(stem.rstrip("-_.")) + tail + "*")
        return cls(canonicalize_name(value))

    @property
    def is_prefix(self) -> bool:
        return self.text.endswith("*")

    def matches(self, canonical: str) -> bool:
        """Whether the normalised project name ``canonical`` falls under this pattern."""
        if self.is_prefix:
            return canonical.startswith(self.text[:-1])
        return canonical == self.text

    def covers(self, other: NamePattern) -> bool:
        """Whether every name ``other`` matches, this matches too (``acme-*`` covers ``acme-x*``)."""
        if not other.is_prefix:
            return self.matches(other.text)
        return self.is_prefix and other.text[:-1].startswith(self.text[:-1])


def patterns(raw: Iterable[str]) -> tuple[NamePattern, ...]:
    """The name patterns of ``raw`` (blank ones skipped); InvalidRequest for a bad one."""
    return tuple(NamePattern.parse(r) for r in raw if r.strip())


def first_match(found: Iterable[NamePattern], canonical: str) -> NamePattern | None:
    """The first pattern ``canonical`` falls under, or None."""
    return next((p for p in found if p.matches(canonical)), None)
