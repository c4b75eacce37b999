"""Tombstones of deleted private files: a filename, once used, keeps its bytes forever.

Lock files pin a file's hash by its name; were another file of the same name
to come back after a delete, an installer would find bytes it never pinned.
So, as on PyPI, a deleted filename may be uploaded again only with the very
same bytes. One row per filename (as installers compare them).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from havarti.db.models import Tombstone
from havarti.distributions import normalized_filename
from havarti.errors import InvalidUpload


def tombstone_key(filename: str) -> str:
    """``filename`` as installers compare it (name and version normalised), else as written."""
    try:
        return normalized_filename(filename)
    except InvalidUpload:
        return filename


def bury(session: Session, project: str, filename: str, sha256: str) -> None:
    """Remember that ``filename`` held ``sha256`` (deleting it again updates nothing else)."""
    key = tombstone_key(filename)
    found = session.get(Tombstone, key)
    if found is None:
        session.add(Tombstone(key=key, filename=filename, project=project, sha256=sha256))


def buried(session: Session, filename: str) -> Tombstone | None:
    """The tombstone of ``filename`` or a variant of it, or None."""
    return session.scalar(select(Tombstone).where(Tombstone.key == tombstone_key(filename)))
