"""Which files of a project the index shows: the one place that decides a file's visibility.

- Shadowing: a private project (one with uploads) hides upstream, its cached
  upstream files too, unless it is listed in UPSTREAM_MERGE.
- Merging (UPSTREAM_MERGE): both are shown, and a private file wins over an
  upstream file of the same name.
- Cooldown (COOLDOWN): an upstream file uploaded less than COOLDOWN ago is
  hidden, unless the project is in COOLDOWN_EXEMPT. A file without an upload
  time cannot be judged young and stays; a file Havarti already holds was judged
  when it was fetched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from havarti.records import PRIVATE, PageFile


@dataclass(frozen=True)
class Visibility:
    """The rules for one project at one moment."""

    private: bool
    merged: bool
    #: Upstream files uploaded after this are hidden; None without a cooldown.
    cooldown_cutoff: datetime | None

    @classmethod
    def of(cls, name: str, private: bool, merge: frozenset[str], cooldown: timedelta | None,
           cooldown_exempt: frozenset[str], now: datetime | None = None) -> Visibility:
        """The rules for project ``name`` under the given settings."""
        cutoff = None
        if cooldown and name not in cooldown_exempt:
            cutoff = (now or datetime.now(UTC)) - cooldown
        return cls(private, name in merge, cutoff)

    @property
    def upstream(self) -> bool:
        """Whether upstream's files are shown at all (not shadowed)."""
        return not self.private or self.merged

    @property
    def upstream_as_listed(self) -> bool:
        """Whether upstream's files are all shown as upstream lists them (nothing to filter)."""
        return self.upstream and self.cooldown_cutoff is None

    def shows(self, origin: str, uploaded: datetime | None = None) -> bool:
        """Whether a file of ``origin`` (records.PRIVATE, CACHED, UPSTREAM) is shown."""
        if origin == PRIVATE:
            return True
        if not self.upstream:
            return False
        return self.cooldown_cutoff is None or uploaded is None or uploaded <= self.cooldown_cutoff

    def upstream_files(self, files: Iterable[PageFile],
                       private_names: frozenset[str] | set[str] = frozenset()) -> list[PageFile]:
        """The upstream ``files`` shown beside private files named ``private_names``."""
        if not self.upstream:
            return []
        return [f for f in files if f.filename not in private_names
                and self.shows(f.origin, f.upload_datetime)]
