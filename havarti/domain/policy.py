"""Package policies and reserved names: what may come from upstream at all.

A rule denies or allows upstream files by project name (or prefix, ``acme-*``),
version specifier (``urllib3<1.26.5``) and/or filename glob (``*-win32.whl``);
names are compared as PEP 503 normalises them, versions as PEP 440 orders
them (pre-releases included). Any allow rule turns on allow-list mode: only
what an allow rule matches comes from upstream. A deny wins over an allow.
Private (uploaded) files are never subject to these rules.

A reserved name or prefix comes only from private uploads: upstream is never
asked about it, so a private name cannot be taken over upstream even before
its first upload (dependency confusion).

Plain logic: :mod:`havarti.db.policies` stores rules, ``POLICY_FILE`` (TOML)
and ``RESERVED_NAMES`` add theirs, and :class:`Policy` is the one snapshot the
index consults. Its ``digest`` names its content, so the page cache keyed by
it rebuilds a page after any change.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from havarti.distributions import NamePattern, first_match, patterns
from havarti.domain.access import checked_note
from havarti.domain.text import problem
from havarti.errors import InvalidRequest, NotFound
from havarti.records import Reservation, StoredRule

if TYPE_CHECKING:
    from havarti.domain.ports import PolicyStore

ACTIONS = ("deny", "allow")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*\*?)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Rule:
    """One deny or allow rule; ``id`` is its database row (None: from POLICY_FILE)."""

    action: str
    match: str = ""
    filename: str = ""
    reason: str = ""
    id: int | None = None
    name: NamePattern | None = field(default=None, compare=False)
    specifier: SpecifierSet | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, action: str, match: str = "", filename: str = "", reason: str = "",
              id: int | None = None) -> Rule:
        """The rule, checked; InvalidRequest says what is wrong with it."""
        if action not in ACTIONS:
            raise InvalidRequest(f"action must be deny or allow, not {action!r}")
        match, filename, reason = match.strip(), filename.strip(), " ".join(reason.split())
        if not match and not filename:
            raise InvalidRequest("a rule needs a project (match, e.g. urllib3<1.26.5) or a "
                                 "filename glob")
        for label, value in (("match", match), ("filename", filename), ("reason", reason)):
            why = problem(value, 200)
            if why is not None:
                raise InvalidRequest(f"the {label} {why}")
        name = specifier = None
        if match:
            found = _NAME.match(match)
            if found is None:
                raise InvalidRequest(f"{match[:80]!r} is not a project name with an optional "
                                     "version specifier, e.g. urllib3<1.26.5")
            name = NamePattern.parse(found.group(1))
            if found.group(2):
                try:
                    specifier = SpecifierSet(found.group(2))
                except InvalidSpecifier:
                    raise InvalidRequest(f"{found.group(2)[:80]!r} is not a version specifier "
                                         "(PEP 440), e.g. <1.26.5") from None
            match = name.text + (str(specifier) if specifier else "")
        if filename and any(c in filename for c in "/\\\x00"):
            raise InvalidRequest("a filename glob has no slashes")
        return cls(action, match, filename, reason, id, name, specifier)

    @property
    def whole_projects(self) -> bool:
        """Whether the rule judges a project by its name alone (no version or filename)."""
        return self.name is not None and self.specifier is None and not self.filename

    @property
    def project(self) -> str:
        """The audit log's project for this rule: its name pattern, or * for every project."""
        return self.name.text if self.name is not None else "*"

    def names(self, canonical: str) -> bool:
        return self.name is None or self.name.matches(canonical)

    def matches(self, canonical: str, version: str | None, filename: str) -> bool:
        """Whether this rule covers ``filename`` (of ``version``) of project ``canonical``."""
        if not self.names(canonical):
            return False
        if self.filename and not fnmatch.fnmatchcase(filename.lower(), self.filename.lower()):
            return False
        if self.specifier is not None:
            try:
                parsed = Version(version or "")
            except InvalidVersion:
                return False  # a version PEP 440 cannot order is in no range
            return self.specifier.contains(parsed, prereleases=True)
        return True

    def describe(self) -> str:
        what = " ".join(p for p in (self.match, f"filename {self.filename}" if self.filename else "")
                        if p)
        return f"{self.action} {what}" + (f" ({self.reason})" if self.reason else "")

    def as_json(self) -> dict:
        return {"id": self.id, "action": self.action, "match": self.match,
                "filename": self.filename, "reason": self.reason,
                "source": "database" if self.id is not None else "POLICY_FILE"}


@dataclass(frozen=True)
class Policy:
    """Every rule and reserved name in force: the one snapshot pages and files consult."""

    rules: tuple[Rule, ...] = ()
    reserved: tuple[NamePattern, ...] = ()
    digest: str = field(init=False, default="")

    def __post_init__(self) -> None:
        content = repr(([(r.action, r.match, r.filename, r.reason) for r in self.rules],
                        sorted(p.text for p in self.reserved)))
        object.__setattr__(self, "digest", hashlib.sha256(content.encode()).hexdigest()[:16])

    @property
    def allow_list(self) -> bool:
        return any(r.action == "allow" for r in self.rules)

    def reserved_by(self, canonical: str) -> NamePattern | None:
        """The reservation ``canonical`` falls under, or None."""
        return first_match(self.reserved, canonical)

    def touches(self, canonical: str) -> bool:
        """Whether any rule may hide a file of ``canonical`` (else its page is served whole)."""
        return self.allow_list or any(r.names(canonical) for r in self.rules)

    def project_refusal(self, canonical: str) -> str | None:
        """Why no upstream file of ``canonical`` may be offered at all, or None."""
        for rule in self.rules:
            if rule.action == "deny" and rule.whole_projects and rule.names(canonical):
                return f"{canonical} is denied by policy: {rule.describe()}"
        if self.allow_list and not any(r.action == "allow" and r.names(canonical)
                                       for r in self.rules):
            return f"{canonical} is not on the policy's allow-list"
        return None

    def file_refusal(self, canonical: str, version: str | None, filename: str) -> str | None:
        """Why upstream's ``filename`` may not be offered, or None (it may)."""
        for rule in self.rules:
            if rule.action == "deny" and rule.matches(canonical, version, filename):
                return f"{filename} is denied by policy: {rule.describe()}"
        if self.allow_list and not any(r.action == "allow" and r.matches(canonical, version, filename)
                                       for r in self.rules):
            return f"{filename} is not on the policy's allow-list"
        return None

    def check(self, requirement: Requirement) -> str | None:
        """Why installing ``requirement`` from upstream would be blocked (wholly or in part)."""
        canonical = canonicalize_name(requirement.name)
        refusal = self.project_refusal(canonical)
        if refusal is not None:
            return refusal
        pinned = _pinned(requirement.specifier)
        for rule in self.rules:
            # A rule naming no project (a filename glob alone) is about files, not requirements.
            if rule.name is None or not rule.names(canonical) or rule.whole_projects:
                continue
            if pinned is not None and rule.specifier is not None and not rule.filename:
                hit = rule.matches(canonical, pinned, "")
                if hit != (rule.action == "deny"):
                    continue
                return (f"{canonical}=={pinned} is denied by policy: {rule.describe()}"
                        if hit else f"{canonical}=={pinned} is not on the policy's allow-list")
            if rule.action == "deny":
                return f"some files of {canonical} are denied by policy: {rule.describe()}"
        return None


def _pinned(specifier: SpecifierSet) -> str | None:
    """The one version ``==X`` pins (no wildcard), or None."""
    specs = list(specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def rules_from_toml(data: dict[str, Any], source: str = "POLICY_FILE") -> list[Rule]:
    """Rules from a policy document::

        deny = ["evil-pkg", "urllib3<1.26.5"]
        allow = ["numpy", "scipy"]          # any allow: allow-list mode

        [[deny]]
        match = "requests<2.31"
        reason = "CVE-2023-32681"

        [[deny]]
        filename = "*-win32.whl"

    Raises InvalidRequest naming the entry that is wrong.
    """
    unknown = set(data) - set(ACTIONS)
    if unknown:
        raise InvalidRequest(f"{source}: unknown key {sorted(unknown)[0]!r}; expected deny, allow")
    rules = []
    for action in ACTIONS:
        entries = data.get(action, [])
        if not isinstance(entries, list):
            raise InvalidRequest(f"{source}: {action} must be a list")
        for number, entry in enumerate(entries, 1):
            if isinstance(entry, str):
                entry = {"match": entry}
            if not isinstance(entry, dict) or set(entry) - {"match", "filename", "reason"} or \
                    not all(isinstance(v, str) for v in entry.values()):
                raise InvalidRequest(f"{source}: {action} entry {number} must be a string or a "
                                     "table of match, filename, reason (strings)")
            try:
                rules.append(Rule.parse(action, **entry))
            except InvalidRequest as exc:
                raise InvalidRequest(f"{source}: {action} entry {number}: {exc}") from None
    return rules


def read_policy_file(path: Path) -> list[Rule]:
    """The rules of a POLICY_FILE; InvalidRequest with the reason if it cannot be used."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"POLICY_FILE {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"POLICY_FILE {path}: not TOML: {exc}") from None
    return rules_from_toml(data, f"POLICY_FILE {path}")


def reserved_from(raw: Iterable[str]) -> tuple[NamePattern, ...]:
    return patterns(raw)


def requirement(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise InvalidRequest(f"not a requirement: {str(exc).splitlines()[0]}") from None


def snapshot(store: PolicyStore, file_rules: tuple[Rule, ...] = (),
             configured: tuple[str, ...] = ()) -> Policy:
    """The policy in force: ``file_rules`` (POLICY_FILE) and ``configured`` reserved names
    (RESERVED_NAMES) first, then the stored ones."""
    stored, reserved = store.load()
    rules = tuple(Rule.parse(r.action, r.match, r.filename, r.reason, r.id) for r in stored)
    return Policy(file_rules + rules, tuple(NamePattern(p) for p in (*configured, *reserved)))


def add_rule(store: PolicyStore, rule: Rule, remote_addr: str | None = None) -> Rule:
    """Store a checked rule, audited; the rule with its id."""
    stored = store.add_rule(rule.action, rule.match, rule.filename, rule.reason, rule.project,
                            rule.describe(), remote_addr)
    return Rule.parse(stored.action, stored.match, stored.filename, stored.reason, stored.id)


def remove_rule(store: PolicyStore, rule_id: int, remote_addr: str | None = None) -> Rule:
    """Remove a stored rule, audited; NotFound if there is none."""
    found = next((r for r in snapshot(store).rules if r.id == rule_id), None)
    if found is None:
        raise NotFound(f"no policy rule {rule_id}")
    store.remove_rule(rule_id, found.project, found.describe(), remote_addr)
    return found


def reserve(store: PolicyStore, pattern: str, note: str = "",
            remote_addr: str | None = None) -> Reservation:
    """Reserve a name or prefix (checked and normalised), audited; Conflict if it is already."""
    return store.reserve(NamePattern.parse(pattern).text, checked_note(note), remote_addr)


__all__ = ["Policy", "Reservation", "Rule", "StoredRule", "add_rule", "remove_rule", "reserve",
           "snapshot"]
