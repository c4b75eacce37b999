"""What an upload must be, and storing one: nothing is kept unless all of it is right."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import re
from dataclasses import dataclass
from typing import BinaryIO

from havarti.distributions import (
    CoreMetadata,
    normalized,
    normalized_filename,
    parse_core_metadata,
    parse_dist_filename,
    read_core_metadata,
    same_version,
)
from havarti.domain.ports import UploadStore
from havarti.domain.text import checked, is_project_name
from havarti.errors import Conflict, InvalidUpload, UploadTooLarge
from havarti.records import DeletedFile, UploadedFile
from havarti.storage import Storage, metadata_key, storage_key
from havarti.storage.base import CHUNK

log = logging.getLogger(__name__)

#: Longest accepted filename, in bytes: it becomes part of storage keys and local file
#: names (255 bytes on most file systems, with room for a temporary prefix).
MAX_FILENAME = 200
_HEX_DIGESTS = {"sha256_digest": 64, "md5_digest": 32, "blake2_256_digest": 64}


@dataclass
class Upload:
    """The fields of a legacy-API upload that Havarti checks."""

    name: str
    version: str
    filename: str
    content: BinaryIO
    sha256_digest: str | None = None
    md5_digest: str | None = None
    blake2_256_digest: str | None = None


def _digests(content: BinaryIO) -> tuple[int, str, str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    blake2 = hashlib.blake2b(digest_size=32)
    size = 0
    content.seek(0)
    while data := content.read(CHUNK):
        size += len(data)
        sha256.update(data)
        md5.update(data)
        blake2.update(data)
    content.seek(0)
    return size, sha256.hexdigest(), md5.hexdigest(), blake2.hexdigest()


def _check_digest(label: str, given: str | None, actual: str) -> None:
    if given and not hmac.compare_digest(given.strip().lower().encode(), actual.encode()):
        raise InvalidUpload(f"{label} does not match the uploaded file")


def check_fields(upload: Upload) -> None:
    """The form's text fields, before anything reads the file: each one storable as it is.

    Raises InvalidUpload naming the field: too long for its column, a control
    character (NUL breaks Postgres, CR/LF would break headers and logs), a lone
    surrogate, a name that is no project name, or a digest that is not hex.
    """
    checked("the filename", upload.filename)
    if len(upload.filename.encode("utf-8")) > MAX_FILENAME:
        raise InvalidUpload(f"the filename is longer than {MAX_FILENAME} bytes")
    if upload.name and not is_project_name(upload.name):
        raise InvalidUpload(f"{upload.name[:80]!r} is not a valid project name (PEP 508)")
    checked("the version", upload.version)
    for label, length in _HEX_DIGESTS.items():
        given = getattr(upload, label)
        if given and not re.fullmatch(rf"\s*[0-9a-fA-F]{{{length}}}\s*", given):
            raise InvalidUpload(f"{label} is not a {length}-digit hex digest")


def _check_metadata(metadata: CoreMetadata) -> None:
    """What the file's own metadata adds to the row must be storable too."""
    checked("the file's Requires-Python", metadata.requires_python or "")
    checked("the file's Description-Content-Type", metadata.description_content_type or "")
    checked("the file's Summary", metadata.summary or "", None, multiline=True)
    checked("the file's description", metadata.description or "", None, multiline=True)


def accept_upload(files: UploadStore, storage: Storage, upload: Upload,
                  max_size: int) -> UploadedFile:
    """Validate ``upload`` completely, then store the object and, last, its row.

    Raises InvalidUpload (with the reason), UploadTooLarge or Conflict; after
    any of them nothing of the upload is stored.
    """
    check_fields(upload)
    dist = parse_dist_filename(upload.filename)
    if not upload.name:
        raise InvalidUpload("the form has no 'name' field")
    if normalized(upload.name) != dist.project:
        raise InvalidUpload(
            f"filename {upload.filename!r} is for project {dist.project!r}, not {upload.name!r}")
    if not upload.version or not same_version(upload.version, dist.version):
        raise InvalidUpload(
            f"filename {upload.filename!r} is for version {dist.version}, not {upload.version!r}")

    size, sha256, md5, blake2 = _digests(upload.content)
    if size == 0:
        raise InvalidUpload(f"{upload.filename} is empty")
    if size > max_size:
        raise UploadTooLarge(
            f"{upload.filename} is {size} bytes, over MAX_UPLOAD_SIZE ({max_size} bytes)")
    _check_digest("sha256_digest", upload.sha256_digest, sha256)
    _check_digest("md5_digest", upload.md5_digest, md5)
    _check_digest("blake2_256_digest", upload.blake2_256_digest, blake2)

    raw_metadata = read_core_metadata(upload.content, upload.filename)
    metadata = parse_core_metadata(raw_metadata)
    _check_metadata(metadata)
    if normalized(metadata.name or "") != dist.project:
        raise InvalidUpload(
            f"the file's metadata names project {metadata.name!r}, not {dist.project!r}")
    if not same_version(metadata.version or "", dist.version):
        raise InvalidUpload(
            f"the file's metadata names version {metadata.version!r}, not {dist.version}")

    refuse_reuse(files.deleted(upload.filename), sha256)
    refuse_taken(files.taken(upload.filename), files.filenames_of(dist.project), upload.filename)

    key = storage_key(sha256, upload.filename)
    # PEP 658 metadata for wheels only, as PyPI: an sdist's PKG-INFO may leave its
    # dependencies out (they are computed at build time), and an installer would trust it.
    metadata_sha256 = (hashlib.sha256(raw_metadata).hexdigest()
                       if dist.packagetype == "bdist_wheel" else None)
    record = UploadedFile(
        filename=upload.filename, version=dist.version, packagetype=dist.packagetype,
        size=size, sha256=sha256, md5=md5, blake2_256=blake2,
        requires_python=metadata.requires_python, metadata_sha256=metadata_sha256,
        storage_key=key, summary=metadata.summary, description=metadata.description,
        description_content_type=metadata.description_content_type)
    written = []
    try:
        if metadata_sha256:
            written.append(metadata_key(metadata_sha256, upload.filename))
            storage.write(written[-1], io.BytesIO(raw_metadata), len(raw_metadata))
        upload.content.seek(0)
        written.append(key)
        storage.write(key, upload.content, size)
        files.add_upload(upload.name, record, lambda taken, names: refuse_taken(
            taken, names, upload.filename))
    except BaseException:
        _forget(files, storage, upload.filename, written)
        raise
    log.info("upload project=%s file=%s size=%d sha256=%s", dist.project, upload.filename,
             size, sha256)
    return record


def refuse_reuse(deleted: DeletedFile | None, sha256: str) -> None:
    """Conflict if the filename was deleted while holding other bytes (its tombstone).

    Lock files pin a file's hash by its name: as on PyPI, a deleted filename may come
    back only with the very same bytes.
    """
    if deleted is not None and deleted.sha256 != sha256:
        raise Conflict(f"filename was used before: {deleted.filename} was deleted on "
                       f"{deleted.deleted:%Y-%m-%d}, and a filename may come back only with "
                       "the same bytes; upload a new version")


def refuse_taken(taken: bool, filenames: list[str], filename: str) -> None:
    """Conflict if ``filename``, or a variant of it among the project's ``filenames``, is
    held already (as on PyPI); ``taken``: a row of ``filename`` exists in any project.

    A variant differs only in how the project name or version is written
    (``Foo_Bar-1.0…`` and ``foo.bar-1.0.0…``): installers take them for one file.
    """
    if taken:
        raise Conflict(f"{filename} already exists; files cannot be replaced")
    wanted = normalized_filename(filename)
    for existing in filenames:
        try:
            same = normalized_filename(existing) == wanted
        except InvalidUpload:  # an upstream file named outside the rules
            continue
        if same:
            raise Conflict(f"{filename} already exists as {existing} (the same project, "
                           "version and tags to installers); files cannot be replaced")


def _forget(files: UploadStore, storage: Storage, filename: str, keys: list[str]) -> None:
    """Delete the objects a refused upload wrote, unless the winner of a race shares them."""
    winner = files.keys_of(filename)
    in_use = set()
    if winner is not None:
        storage_key_, metadata_sha256 = winner
        in_use.add(storage_key_)
        if metadata_sha256:
            in_use.add(metadata_key(metadata_sha256, filename))
    for key in keys:
        if key not in in_use:
            storage.delete(key)
