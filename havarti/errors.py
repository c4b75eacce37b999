"""Domain errors. Only the web layer maps them to HTTP status codes."""


class HavartiError(Exception):
    """Base of the errors a user can be told about in one line."""


class NotFound(HavartiError):
    """No such project or file."""


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


class StorageUnavailable(HavartiError):
    """The storage backend failed; what needs bytes answers 503."""
