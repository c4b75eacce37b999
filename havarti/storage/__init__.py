"""Storage backends behind one interface, chosen by the STORAGE setting."""

from __future__ import annotations

from collections.abc import Callable

from havarti.config import Settings
from havarti.storage.base import (
    Digests,
    HashingReader,
    IntegrityError,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageFull,
    metadata_key,
    storage_key,
)

__all__ = ["Digests", "HashingReader", "IntegrityError", "ObjectNotFound", "Storage", "StorageError",
           "StorageFull", "make_storage", "metadata_key", "storage_key"]


def _local(settings: Settings) -> Storage:
    from havarti.storage.local import LocalStorage

    return LocalStorage(settings.package_cache / "files")


def _s3(settings: Settings) -> Storage:
    from havarti.storage.s3 import S3Storage

    return S3Storage.from_settings(settings)


def _rackspace(settings: Settings) -> Storage:
    from havarti.storage.swift import SwiftStorage

    return SwiftStorage.rackspace(settings)


def _swift(settings: Settings) -> Storage:
    from havarti.storage.swift import SwiftStorage

    return SwiftStorage.openstack(settings)


BACKENDS: dict[str, Callable[[Settings], Storage]] = {
    "localstorage": _local,
    "s3storage": _s3,
    "rackspacestorage": _rackspace,
    "swiftstorage": _swift,
}


def make_storage(settings: Settings) -> Storage:
    return BACKENDS[settings.storage](settings)
