"""Log injection: whatever a logged value holds, an event is one line of its own."""

from __future__ import annotations

import io
import logging
import re

from havarti.logs import FORMAT, OneLineFormatter, escape

FORGED = "/x\r\n2026-01-01 00:00:00,000 level=ERROR logger=havarti forged\u2028again\x00\x1b[2J"
EVENT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} level=")


def emit(record_args: tuple, exc: BaseException | None = None, msg: str = "request path=%s") -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(FORMAT))
    logger = logging.getLogger("havarti.test-logs")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        if exc is None:
            logger.warning(msg, *record_args)
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(msg, *record_args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_escape_writes_every_control_character_as_its_escape():
    assert escape("a\r\nb\tc\x00d\x7f\x85e\u2028f\u2029") == \
        "a\\r\\nb\\tc\\x00d\\x7f\\x85e\\u2028f\\u2029"
    assert escape("plain text, é ☃") == "plain text, é ☃"


def test_a_logged_value_cannot_start_a_line():
    out = emit((FORGED,))
    lines = out.splitlines()
    assert len(lines) == 1
    assert "forged" in lines[0] and "\\r\\n2026-01-01" in lines[0] and "\\u2028" in lines[0]
    assert "\x1b" not in out and "\x00" not in out


def test_messages_built_without_arguments_are_escaped_too():
    out = emit((), msg=f"upstream-stale project=x reason={FORGED}")
    assert len(out.splitlines()) == 1


def test_a_traceback_stays_under_its_event():
    out = emit((FORGED,), exc=ValueError(FORGED))
    lines = out.splitlines()
    assert EVENT.match(lines[0])
    # Every other line is indented: nothing below the event looks like an event of its own.
    assert len(lines) > 3 and all(line.startswith("    | ") for line in lines[1:])
    assert "    | ValueError: /x" in out and "    | 2026-01-01 00:00:00,000 level=ERROR" in out
    assert sum(1 for line in lines if EVENT.match(line)) == 1
