"""Logging: one line per event, ``key=value``, whatever the logged values hold.

Logged values come from clients (paths, reasons, filenames) and from
upstream. A CR or LF in one of them would start a forged log line, so the
formatter escapes every control character of the message (``\\r``, ``\\n``,
``\\x00``, ``\\u2028`` ...) in this one place, not at each call. A traceback
keeps its lines, each indented, so no line of it can pass for an event
either: every line that starts in the first column is a real event.
"""

from __future__ import annotations

import logging
import re
import sys

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` on one line: every control character written as its escape (``\\n``, ``\\x00``)."""
    return _UNSAFE.sub(_escape_char, text)


class OneLineFormatter(logging.Formatter):
    """Escapes the message (format string and values alike); indents tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        # logging caches a traceback's text on the record (exc_text) for every handler: one
        # formatted by another handler's formatter first (pytest 9.2's log capture, a
        # library's) would be written here unindented. Ours is made here, and theirs kept.
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 -- logging's name
        record.message = escape(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:  # noqa: N802
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    | " + escape(line) for line in text.splitlines())


_configured = False


def configure(debug: bool = False) -> None:
    """One stderr handler on the root logger with :class:`OneLineFormatter` (once per process).

    Handlers someone else put on the root logger (a test runner's) keep
    theirs; Flask's own default handler, when attached, gets ours.
    """
    global _configured
    if _configured:
        return
    _configured = True
    root = logging.getLogger()
    # httpx logs every request at INFO: one line per upstream request is noise, and costs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    formatter = OneLineFormatter(FORMAT)
    if not root.handlers:
        root.setLevel(logging.DEBUG if debug else logging.INFO)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    try:
        from flask.logging import default_handler
    except ImportError:  # pragma: no cover -- Flask is a dependency
        return
    default_handler.setFormatter(formatter)
