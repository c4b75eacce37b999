"""Which files of a project the index shows: the one place that decides a file's visibility.

- Shadowing: a private project (one with uploads) hides upstream, its cached
  upstream files too, unless it merges: its own choice (``havarti project NAME
  --merge``, the UI, the API) or, without one, UPSTREAM_MERGE.
- Merging (UPSTREAM_MERGE): both are shown, and a private file wins over an
  upstream file of the same name.
- Cooldown (COOLDOWN): an upstream file uploaded less than COOLDOWN ago is
  hidden, unless the project is in COOLDOWN_EXEMPT. A file without an upload
  time cannot be judged young and stays; a file Havarti already holds was judged
  when it was fetched.
- Reserved names (RESERVED_NAMES, ``havarti reserved``): upstream is never
  asked; the project shows private files only, and is not found without any.
- Policies (POLICY_FILE, ``havarti policy``): an upstream file a rule denies is
  hidden, cached or not, and refused with the rule's reason; a project denied
  by name shows private files only, and is refused without any. Private files
  are never subject to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from havarti.domain.access import NamePattern
from havarti.domain.policy import Policy
from havarti.errors import Forbidden, NotFound
from havarti.records import PRIVATE, PageFile

#: A private project's own choice (Project.upstream_mode): offer upstream's files beside
#: its own, or hide them.
MERGE = "merge"
SHADOW = "shadow"


@dataclass(frozen=True)
class Visibility:
    """The rules for one project at one moment."""

    private: bool
    merged: bool
    #: Upstream files uploaded after this are hidden; None without a cooldown.
    cooldown_cutoff: datetime | None
    name: str = ""
    policy: Policy = field(default_factory=Policy)
    #: The reservation the name falls under, or None.
    reserved: NamePattern | None = None
    #: Why a policy denies every upstream file of the project, or None.
    denied: str | None = None

    @classmethod
    def of(cls, name: str, private: bool, merge: frozenset[str], cooldown: timedelta | None,
           cooldown_exempt: frozenset[str], now: datetime | None = None,
           mode: str | None = None, policy: Policy | None = None) -> Visibility:
        """The rules for project ``name`` under the settings, its own ``mode`` and ``policy``."""
        cutoff = None
        if cooldown and name not in cooldown_exempt:
            cutoff = (now or datetime.now(UTC)) - cooldown
        merged = mode == MERGE if mode in (MERGE, SHADOW) else name in merge
        policy = policy or Policy()
        return cls(private, merged, cutoff, name, policy, policy.reserved_by(name),
                   policy.project_refusal(name))

    @property
    def shadows(self) -> bool:
        """Whether a private project hides upstream's files of its name."""
        return self.private and not self.merged

    @property
    def upstream(self) -> bool:
        """Whether upstream is asked and its files shown at all (not shadowed, reserved or denied)."""
        return (self.reserved is None and self.denied is None
                and (not self.private or self.merged))

    @property
    def upstream_as_listed(self) -> bool:
        """Whether upstream's files are all shown as upstream lists them (nothing to filter)."""
        return (self.upstream and self.cooldown_cutoff is None
                and not self.policy.touches(self.name))

    def check_project(self) -> None:
        """NotFound for a reserved name nothing was uploaded to; Forbidden (with the
        policy's reason) for a denied project without private files."""
        if self.private:
            return
        if self.reserved is not None:
            raise NotFound(f"{self.name!r} is reserved ({self.reserved.text}) for private "
                           "uploads and has none yet")
        if self.denied is not None:
            raise Forbidden(self.denied)

    def refusal(self, origin: str, version: str | None, filename: str) -> str | None:
        """Why a policy refuses this non-private file, or None."""
        if origin == PRIVATE:
            return None
        return self.denied or self.policy.file_refusal(self.name, version, filename)

    def shows(self, origin: str, uploaded: datetime | None = None, version: str | None = None,
              filename: str = "") -> bool:
        """Whether a file of ``origin`` (records.PRIVATE, CACHED, UPSTREAM) is shown."""
        if origin == PRIVATE:
            return True
        if not self.upstream:
            return False
        if filename and self.refusal(origin, version, filename) is not None:
            return False
        return self.cooldown_cutoff is None or uploaded is None or uploaded <= self.cooldown_cutoff

    def upstream_files(self, files: Iterable[PageFile],
                       private_names: frozenset[str] | set[str] = frozenset()) -> list[PageFile]:
        """The upstream ``files`` shown beside private files named ``private_names``."""
        if not self.upstream:
            return []
        return [f for f in files if f.filename not in private_names
                and self.shows(f.origin, f.upload_datetime, f.version, f.filename)]
