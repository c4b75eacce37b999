"""What an upload must be, and storing one: nothing is kept unless all of it is right."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from havarti.db import Database
from havarti.db.models import ORIGIN_UPLOADED, File
from havarti.domain.catalog import get_or_create_project
from havarti.domain.distributions import (
    normalized,
    parse_core_metadata,
    parse_dist_filename,
    read_core_metadata,
    same_version,
)
from havarti.errors import Conflict, InvalidUpload, UploadTooLarge
from havarti.storage import Storage, metadata_key, storage_key
from havarti.storage.base import CHUNK

log = logging.getLogger(__name__)


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
    if given and not hmac.compare_digest(given.strip().lower(), actual):
        raise InvalidUpload(f"{label} does not match the uploaded file")


def accept_upload(db: Database, storage: Storage, upload: Upload, max_size: int) -> File:
    """Validate ``upload`` completely, then store the object and, last, its row.

    Raises InvalidUpload (with the reason), UploadTooLarge or Conflict; after
    any of them nothing of the upload is stored.
    """
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
        raise UploadTooLarge(f"{upload.filename} is {size} bytes, over the {max_size}-byte limit")
    _check_digest("sha256_digest", upload.sha256_digest, sha256)
    _check_digest("md5_digest", upload.md5_digest, md5)
    _check_digest("blake2_256_digest", upload.blake2_256_digest, blake2)

    raw_metadata = read_core_metadata(upload.content, upload.filename)
    metadata = parse_core_metadata(raw_metadata)
    if normalized(metadata.name or "") != dist.project:
        raise InvalidUpload(
            f"the file's metadata names project {metadata.name!r}, not {dist.project!r}")
    if not same_version(metadata.version or "", dist.version):
        raise InvalidUpload(
            f"the file's metadata names version {metadata.version!r}, not {dist.version}")

    with db.session() as session:
        if session.scalar(select(File.id).where(File.filename == upload.filename)) is not None:
            raise Conflict(f"{upload.filename} already exists; files cannot be replaced")

    key = storage_key(sha256, upload.filename)
    metadata_sha256 = hashlib.sha256(raw_metadata).hexdigest()
    storage.write(metadata_key(metadata_sha256, upload.filename), io.BytesIO(raw_metadata),
                  len(raw_metadata))
    upload.content.seek(0)
    storage.write(key, upload.content, size)

    try:
        with db.session() as session:
            project = get_or_create_project(session, upload.name)
            project.private = True
            project.serial += 1
            row = File(
                project_id=project.id, filename=upload.filename, version=dist.version,
                packagetype=dist.packagetype, size=size, sha256=sha256, md5=md5,
                blake2_256=blake2, requires_python=metadata.requires_python,
                origin=ORIGIN_UPLOADED, metadata_sha256=metadata_sha256, storage_key=key,
                summary=metadata.summary, description=metadata.description,
                description_content_type=metadata.description_content_type,
            )
            session.add(row)
    except IntegrityError:
        # Another upload of the same filename won the race; files are immutable.
        with db.session() as session:
            in_use = session.scalar(select(File.id).where(File.storage_key == key))
        if in_use is None:
            storage.delete(key)
        raise Conflict(f"{upload.filename} already exists; files cannot be replaced") from None
    log.info("upload project=%s file=%s size=%d sha256=%s", dist.project, upload.filename,
             size, sha256)
    return row

