"""Prefetch: warm the cache with the files a requirements file (or pylock.toml) needs.

Three steps, each a plain function the CLI calls: read the requirements, plan
which files match (newest version the specifier allows, wheels whose tags fit
the target Pythons and platforms, the sdist when no wheel fits), then queue one
``cache_file`` job per file and watch the database until each is stored or its
job failed.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from havarti.domain.index import PackageIndex
from havarti.errors import HavartiError, NotFound, UpstreamError
from havarti.records import PageFile


class PrefetchError(HavartiError):
    """The requirements could not be read; the message says where and why."""


@dataclass(frozen=True)
class Target:
    """The Pythons and platforms files are chosen for."""

    python_versions: tuple[tuple[int, int], ...]
    platforms: tuple[str, ...] | None  # None: any platform

    @classmethod
    def build(cls, python_versions: Iterable[str] = (), platforms: Iterable[str] = ()) -> Target:
        """From ``--python-version 3.11`` and ``--platform manylinux_2_17_x86_64`` values.

        No Python version: the running one. No platform: any platform.
        """
        versions = []
        for raw in python_versions:
            parts = raw.strip().split(".")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise PrefetchError(f"--python-version {raw!r}: expected MAJOR.MINOR such as 3.11")
            versions.append((int(parts[0]), int(parts[1])))
        if not versions:
            versions = [sys.version_info[:2]]
        return cls(tuple(versions), tuple(platforms) or None)

    def accepts_python(self, requires_python: str | None) -> bool:
        """Whether a file's Requires-Python admits this target's Python."""
        if not requires_python:
            return True
        try:
            spec = SpecifierSet(requires_python)
        except InvalidSpecifier:
            return True  # an unreadable constraint must not hide the file
        return any(spec.contains(f"{major}.{minor}", prereleases=True)
                   for major, minor in self.python_versions)

    def accepts_wheel(self, filename: str) -> bool:
        """A wheel fits when one of its tags names a target interpreter/ABI and platform.

        Platforms match exactly as given (pass several for manylinux variants).
        """
        try:
            wheel_tags = parse_wheel_filename(filename)[3]
        except InvalidWheelFilename:
            return False
        pairs = self._interpreters()
        return any((tag.interpreter, tag.abi) in pairs and (
            self.platforms is None or tag.platform == "any" or tag.platform in self.platforms)
            for tag in wheel_tags)

    def _interpreters(self) -> set[tuple[str, str]]:
        pairs = set()
        for version in self.python_versions:
            # The platform is judged separately, so one placeholder platform suffices.
            for tag in (*tags.cpython_tags(version, platforms=["any"]),
                        *tags.compatible_tags(version, platforms=["any"])):
                pairs.add((tag.interpreter, tag.abi))
        return pairs

    def describe(self) -> str:
        """The target in one line."""
        pythons = ", ".join(f"{major}.{minor}" for major, minor in self.python_versions)
        return f"Python {pythons}" + (f" on {', '.join(self.platforms)}" if self.platforms else "")


@dataclass(frozen=True)
class Wanted:
    """One file to cache."""

    project: str
    filename: str
    size: int | None


@dataclass
class Plan:
    """The files a prefetch will cache, and what it could not resolve."""

    files: list[Wanted] = field(default_factory=list)
    #: (requirement, reason) for requirements nothing could be chosen for.
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Status:
    """How far the downloads of a plan are."""

    cached: dict[str, int] = field(default_factory=dict)  # filename -> bytes
    failed: dict[str, str] = field(default_factory=dict)  # filename -> reason

    def done(self, plan: Plan) -> bool:
        """Whether every planned file is stored or has failed for good."""
        return all(w.filename in self.cached or w.filename in self.failed for w in plan.files)


def read_requirements(path: Path, _including: frozenset[Path] = frozenset()) -> list[Requirement]:
    """Names with optional pins from a requirements file (``-r`` nested) or a pylock.toml."""
    if path.resolve() in _including:
        raise PrefetchError(f"{path}: includes itself (-r)")
    try:
        text = path.read_text()
    except OSError as exc:
        raise PrefetchError(f"{path}: {exc.strerror or exc}") from None
    if path.name == "pylock.toml" or (path.name.startswith("pylock.") and path.suffix == ".toml"):
        return _read_pylock(path, text)
    requirements = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            nested = line.split(None, 1)[1].strip()
            requirements += read_requirements(path.parent / nested,
                                              _including | {path.resolve()})
            continue
        if line.startswith("-"):
            continue  # pip options (-i, --hash, -c ...) choose no files
        try:
            # Per-requirement options (--hash=...) follow the requirement itself.
            requirement = Requirement(line.split(" -", 1)[0].strip())
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]  # packaging adds a caret diagram below
            raise PrefetchError(f"{path}:{number}: not a requirement: {reason}") from None
        if requirement.url:
            raise PrefetchError(f"{path}:{number}: {requirement.name} is a direct URL, not from an index")
        requirements.append(requirement)
    return requirements


def _read_pylock(path: Path, text: str) -> list[Requirement]:
    try:
        packages = tomllib.loads(text).get("packages", [])
        return [Requirement(f"{p['name']}=={p['version']}" if p.get("version") else p["name"])
                for p in packages]
    except (tomllib.TOMLDecodeError, KeyError, TypeError, InvalidRequirement) as exc:
        raise PrefetchError(f"{path}: not a readable pylock.toml: {exc}") from None


def plan(index: PackageIndex, requirements: list[Requirement], target: Target) -> Plan:
    """Choose the files to cache for each requirement, through the index's project pages."""
    result = Plan()
    seen: set[str] = set()
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        try:
            page = index.project_page(name).page
        except (NotFound, UpstreamError) as exc:
            result.problems.append((str(requirement), str(exc)))
            continue
        chosen = choose_files(page.files, requirement.specifier, target)
        if not chosen:
            result.problems.append((str(requirement), f"no file of {name} matches {target.describe()}"
                                    if page.files else f"{name} has no files"))
        for f in chosen:
            if f.filename not in seen:
                seen.add(f.filename)
                result.files.append(Wanted(name, f.filename, f.size))
    return result


def choose_files(files: list[PageFile], specifier: SpecifierSet, target: Target) -> list[PageFile]:
    """The newest allowed version's files that fit ``target``: its wheels, else its sdist."""
    by_version: dict[Version, list[PageFile]] = {}
    for f in files:
        if f.yanked is not False or not f.version or not target.accepts_python(f.requires_python):
            continue
        try:
            version = Version(f.version)
        except InvalidVersion:
            continue
        by_version.setdefault(version, []).append(f)
    allowed = list(specifier.filter(by_version))
    for version in sorted(allowed, reverse=True):
        candidates = by_version[version]
        wheels = [f for f in candidates if f.filename.endswith(".whl")
                  and target.accepts_wheel(f.filename)]
        if wheels:
            return wheels
        sdists = [f for f in candidates if not f.filename.endswith(".whl")]
        if sdists:
            return sdists
    return []


def enqueue(index: PackageIndex, plan: Plan) -> None:
    """Queue one cache_file job per planned file (a no-op for files already cached)."""
    if index.jobs is None:
        raise PrefetchError("no job runner configured")
    for wanted in plan.files:
        if not index.jobs.enqueue("cache_file", project=wanted.project, filename=wanted.filename):
            raise PrefetchError("could not queue jobs: the broker (Redis) is unavailable")


def status(index: PackageIndex, plan: Plan) -> Status:
    """What is stored so far, and which jobs failed (with the reason)."""
    names = [w.filename for w in plan.files]
    state = Status()
    state.cached.update(index.files.stored_sizes(names))
    assert index.jobs is not None
    for wanted in plan.files:
        if wanted.filename not in state.cached:
            reason = index.jobs.failure("cache_file", project=wanted.project,
                                        filename=wanted.filename)
            if reason is not None:
                state.failed[wanted.filename] = reason
    return state
