"""Havarti: a private package index and caching proxy for PyPI.

``havarti.app`` is the one application object both seed commands resolve
(``gunicorn havarti:app`` and ``celery --app=havarti worker``). It is built on
first access, so importing ``havarti`` reads no environment and opens nothing.
"""

from __future__ import annotations

from typing import Any

__version__ = "1.0.0"


def __getattr__(name: str) -> Any:
    if name == "app":
        from havarti.application import get_application

        return get_application()
    raise AttributeError(f"module 'havarti' has no attribute {name!r}")
