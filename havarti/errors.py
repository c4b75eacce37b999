"""Domain errors. Only the web layer maps them to HTTP status codes."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

#: What a write refused for want of space tells the client (no path: anyone may read it).
NO_SPACE = ("storage full: no space left on device; uploads and downloads of new files "
            "resume once space is freed")


class HavartiError(Exception):
    """Base of the errors a user can be told about in one line."""


class NotFound(HavartiError):
    """No such project or file."""


class InvalidRequest(HavartiError):
    """A request's fields are wrong (400); the message says which and why."""


class BodyTooLarge(InvalidRequest):
    """A request body over what its endpoint reads (413)."""


class Unauthorized(HavartiError):
    """No credentials, or ones that are not accepted (401): wrong, unknown, expired, revoked."""


class Forbidden(HavartiError):
    """Known credentials that may not do this, or a file a policy denies (403)."""


class InvalidUpload(HavartiError):
    """An upload was refused; the message says why."""


class Conflict(HavartiError):
    """The thing already exists and may not be replaced (a filename, as on PyPI)."""


class UploadTooLarge(InvalidUpload):
    """Over MAX_UPLOAD_SIZE."""


class UpstreamError(HavartiError):
    """Upstream failed (refused, timed out, 5xx, unparsable) and nothing is stored to fall back on."""

    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class UpstreamNotFound(NotFound):
    """Upstream says the project does not exist."""


class DownloadFailed(HavartiError):
    """The upstream download broke or did not verify; nothing was stored."""


class StorageUnavailable(HavartiError):
    """The storage backend failed; what needs bytes answers 503."""


def no_space(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what caused it, says a disk is full.

    An OSError ENOSPC / EDQUOT (storage, spool, temporary files), SQLite's "database
    or disk is full", Postgres's disk_full (SQLSTATE 53100), wrapped or not.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(exc, "sqlstate", None) == "53100" or getattr(exc, "pgcode", None) == "53100":
            return True
        text = str(exc).lower()
        if "database or disk is full" in text or "no space left on device" in text:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


@contextmanager
def unless_full(what: str) -> Iterator[None]:
    """Around a write a read can do without (bookkeeping, a copy kept to save work later):
    on a full disk it is skipped with a log line, and the request it serves goes on."""
    try:
        yield
    except Exception as exc:
        if not no_space(exc):
            raise
        log.warning("not-written what=%s reason=no space left on device", what)
