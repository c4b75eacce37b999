"""Prefetch: warm the cache with the files a requirements file (or pylock.toml) needs.

Three steps, each a plain function the CLI calls: read the requirements, plan
which files an install needs, then queue one ``cache_file`` job per file and
watch the database until each is stored or its job failed.

Planning resolves the requirements and everything they depend on, for each
target Python and platform, with a real resolver (uv, asked through Havarti's
own index so the pages are stored too: :mod:`havarti.resolver`); with
``--no-deps`` (a lock file lists everything already) each requirement is taken
alone, at the newest version it allows. For each pinned version the files are
those pip would install on the target (:func:`installed_wheels`), or the sdist
when no wheel fits.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from havarti.domain.index import PackageIndex
from havarti.domain.platforms import DEFAULT_PLATFORM, Platform, UnknownPlatform, installed_wheels
from havarti.errors import HavartiError, NotFound, UpstreamError
from havarti.records import PageFile


class PrefetchError(HavartiError):
    """The requirements could not be read; the message says where and why."""


@dataclass(frozen=True)
class Target:
    """The Pythons and platforms files are chosen for."""

    python_versions: tuple[tuple[int, int], ...]
    platforms: tuple[Platform, ...]

    @classmethod
    def build(cls, python_versions: Iterable[str] = (), platforms: Iterable[str] = ()) -> Target:
        """From ``--python-version 3.11`` and ``--platform manylinux_2_17_x86_64`` values.

        No Python version: the running one. No platform: x86-64 Linux (manylinux).
        """
        versions = []
        for raw in python_versions:
            parts = raw.strip().split(".")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise PrefetchError(f"--python-version {raw!r}: expected MAJOR.MINOR such as 3.11")
            versions.append((int(parts[0]), int(parts[1])))
        if not versions:
            versions = [sys.version_info[:2]]
        try:
            chosen = tuple(Platform.parse(p) for p in platforms) or (Platform.parse(DEFAULT_PLATFORM),)
        except UnknownPlatform as exc:
            raise PrefetchError(str(exc)) from None
        return cls(tuple(dict.fromkeys(versions)), chosen)

    def each(self) -> Iterator[Target]:
        """One target per Python and platform: what one resolution is for."""
        for version in self.python_versions:
            for platform in self.platforms:
                yield Target((version,), (platform,))

    def describe(self) -> str:
        """The target in one line."""
        pythons = ", ".join(f"{major}.{minor}" for major, minor in self.python_versions)
        return f"Python {pythons} on {', '.join(p.tag for p in self.platforms)}"


def _accepts_python(python: tuple[int, int], requires_python: str | None) -> bool:
    if not requires_python:
        return True
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True  # an unreadable constraint must not hide the file
    return spec.contains(f"{python[0]}.{python[1]}", prereleases=True)


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

    def add(self, wanted: Iterable[Wanted]) -> None:
        known = {w.filename for w in self.files}
        for item in wanted:
            if item.filename not in known:
                known.add(item.filename)
                self.files.append(item)

    def merge(self, other: Plan) -> None:
        self.add(other.files)
        self.problems += [p for p in other.problems if p not in self.problems]


@dataclass
class Status:
    """How far the downloads of a plan are."""

    cached: dict[str, int] = field(default_factory=dict)  # filename -> bytes
    failed: dict[str, str] = field(default_factory=dict)  # filename -> reason

    def done(self, plan: Plan) -> bool:
        """Whether every planned file is stored or has failed for good."""
        return all(w.filename in self.cached or w.filename in self.failed for w in plan.files)


def is_lock_file(path: Path) -> bool:
    """A pylock.toml (PEP 751): every package pinned, dependencies included."""
    return path.name == "pylock.toml" or (path.name.startswith("pylock.") and path.suffix == ".toml")


def read_requirements(path: Path, _including: frozenset[Path] = frozenset()) -> list[Requirement]:
    """Names with optional pins from a requirements file (``-r`` nested) or a pylock.toml."""
    if path.resolve() in _including:
        raise PrefetchError(f"{path}: includes itself (-r)")
    try:
        text = path.read_text()
    except OSError as exc:
        raise PrefetchError(f"{path}: {exc.strerror or exc}") from None
    if is_lock_file(path):
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
        result.add(Wanted(name, f.filename, f.size) for f in chosen)
    return result


class ResolutionFailed(HavartiError):
    """The resolver found no set of versions; the message is its reason, on one line."""


#: Pins (``name==version``) for the requirements and all they depend on, for one Python
#: and platform; raises ResolutionFailed.
Resolver = Callable[[list[Requirement], tuple[int, int], Platform], list[Requirement]]


def plan_with_dependencies(index: PackageIndex, requirements: list[Requirement], target: Target,
                           resolve: Resolver) -> Plan:
    """Resolve the requirements with their dependencies for each Python and platform, then
    choose the pinned versions' files as :func:`plan` does.

    A requirement whose project does not exist is reported on its own and left out,
    so that one typo does not stop the whole resolution.
    """
    result = Plan()
    known = []
    for requirement in requirements:
        try:
            index.project_page(canonicalize_name(requirement.name))
        except (NotFound, UpstreamError) as exc:
            result.problems.append((str(requirement), str(exc)))
        else:
            known.append(requirement)
    if not known:
        return result
    for single in target.each():
        try:
            pins = resolve(known, single.python_versions[0], single.platforms[0])
        except ResolutionFailed as exc:
            result.problems.append((f"dependencies for {single.describe()}", str(exc)))
            continue
        result.merge(plan(index, pins, single))
    return result


def choose_files(files: list[PageFile], specifier: SpecifierSet, target: Target) -> list[PageFile]:
    """The newest allowed version's files that fit ``target``.

    For each target Python and platform: the wheels pip would install there
    (:func:`installed_wheels`), else the sdist it would build from.
    """
    by_version: dict[Version, list[PageFile]] = {}
    for f in files:
        if f.yanked is not False or not f.version:
            continue
        try:
            version = Version(f.version)
        except InvalidVersion:
            continue
        by_version.setdefault(version, []).append(f)
    for version in sorted(specifier.filter(by_version), reverse=True):
        chosen: dict[str, PageFile] = {}
        for python in target.python_versions:
            fitting = [f for f in by_version[version] if _accepts_python(python, f.requires_python)]
            wheels = [f for f in fitting if f.filename.endswith(".whl")]
            sdists = [f for f in fitting if not f.filename.endswith(".whl")]
            for platform in target.platforms:
                for f in installed_wheels(wheels, python, platform) or sdists:
                    chosen[f.filename] = f
        if chosen:
            return sorted(chosen.values(), key=lambda f: f.filename)
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
