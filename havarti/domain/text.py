"""Text from clients, checked before it reaches the database, a URL or a log.

Every database Havarti runs on must be able to store what it accepts:
Postgres refuses NUL characters and anything longer than a column, and no
driver can encode a lone surrogate (``"\\ud800"`` from JSON). A value that
breaks one of these rules is refused with a one-line reason (400), never
left to fail in the database (500).
"""

from __future__ import annotations

import re

from havarti.distributions import PROJECT_NAME
from havarti.errors import InvalidUpload

#: The characters of any version string (PEP 440 and legacy ones): no spaces, slashes or controls.
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
#: The widest string column (names, versions, requires-python, content types).
MAX_SHORT = 255

# C0 and C1 controls and DEL (one line) / only NUL (multi-line text such as a description).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NUL = re.compile("\x00")


def is_project_name(name: str) -> bool:
    """Whether ``name`` is a valid project name (PEP 508)."""
    return len(name) <= MAX_SHORT and PROJECT_NAME.match(name) is not None


def is_version(version: str) -> bool:
    """Whether ``version`` looks like a version a user may ask for."""
    return len(version) <= MAX_SHORT and VERSION.match(version) is not None


def problem(value: str, max_length: int | None = MAX_SHORT, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as it is, or None."""
    if max_length is not None and len(value) > max_length:
        return f"is longer than {max_length} characters"
    if (_NUL if multiline else _CONTROL).search(value):
        return "contains a NUL character" if multiline else "contains a control character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (a lone surrogate)"
    return None


def checked(label: str, value: str, max_length: int | None = MAX_SHORT,
            multiline: bool = False) -> str:
    """``value``, or InvalidUpload (400) saying why ``label`` cannot be stored."""
    reason = problem(value, max_length, multiline)
    if reason is not None:
        raise InvalidUpload(f"{label} {reason}")
    return value
