"""Managing private files: yank, unyank (PEP 592) and delete, each written to the audit log.

Every change bumps the project's serial, so every worker's cached simple page
is rebuilt on the next request. Only uploaded (private) files can be managed:
cached files mirror upstream, which decides about them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from havarti.distributions import normalized
from havarti.domain.ports import ManagedFiles
from havarti.domain.text import checked
from havarti.storage import Storage, StorageError, metadata_key

log = logging.getLogger(__name__)

MAX_REASON = 500


@dataclass(frozen=True)
class FileState:
    """A private file after a change, as the JSON API reports it."""

    project: str
    filename: str
    yanked: bool
    yanked_reason: str | None
    deleted: bool = False

    def as_json(self) -> dict:
        """The JSON API's document."""
        return {"project": self.project, "filename": self.filename, "yanked": self.yanked,
                "yanked_reason": self.yanked_reason, "deleted": self.deleted}


def yank(files: ManagedFiles, project: str, filename: str, reason: str = "",
         remote_addr: str | None = None) -> FileState:
    """Mark a private file yanked (PEP 592) with ``reason``; yanking again updates the reason."""
    reason = checked("the reason", " ".join(reason.split()), MAX_REASON)
    return _set_yanked(files, project, filename, reason, remote_addr)


def unyank(files: ManagedFiles, project: str, filename: str,
           remote_addr: str | None = None) -> FileState:
    """Make a yanked private file installable again."""
    return _set_yanked(files, project, filename, None, remote_addr)


def _set_yanked(files: ManagedFiles, project: str, filename: str, reason: str | None,
                remote_addr: str | None) -> FileState:
    """Yank with ``reason``, or unyank when it is None."""
    name = files.set_yanked(normalized(project), filename, reason, remote_addr)
    return FileState(name, filename, reason is not None, reason)


def delete(files: ManagedFiles, storage: Storage, project: str, filename: str,
           remote_addr: str | None = None) -> FileState:
    """Remove a private file: its row first, then its stored objects.

    The project stays private even with no file left, so it keeps shadowing
    the public project of the same name (dependency-confusion protection).
    """
    name, key, meta = files.delete_private(normalized(project), filename, remote_addr)
    keys = [] if files.key_in_use(key) else [key]
    if meta:
        keys.append(metadata_key(meta, filename))
    for stored in keys:
        try:
            storage.delete(stored)
        except (StorageError, FileNotFoundError) as exc:
            # The row is gone, so the file is no longer offered; a stray object costs only space.
            log.warning("manage-delete-object-failed key=%s reason=%s", stored, exc)
    return FileState(name, filename, False, None, deleted=True)
