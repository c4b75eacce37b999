"""Which wheels an installer takes: platform tags, their order, and the resolver's names.

A ``--platform`` value of ``havarti prefetch`` names the newest system of its kind
(``manylinux_2_28_x86_64``: glibc 2.28 and older). :func:`installed_wheels`
answers what pip would install from one version's wheels on each system that
covers, ranking tags as ``packaging.tags`` (and so pip) does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from packaging import tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from havarti.records import PageFile


class UnknownPlatform(ValueError):  # noqa: N818 -- reads as the refusal it is
    """Not a platform tag the resolver can resolve for; the message says which are."""


#: What an installer on x86-64 Linux takes: every manylinux level up to glibc 2.40, so that
#: pip on an old and on a new glibc each finds the wheel it prefers (the "levels" below).
DEFAULT_PLATFORM = "manylinux_2_40_x86_64"

_MANYLINUX = re.compile(r"manylinux_2_(\d+)_(\w+)$")
_LEGACY_MANYLINUX = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}
_MUSLLINUX = re.compile(r"musllinux_1_(\d+)_(\w+)$")
_MACOS = re.compile(r"macosx_(\d+)_(\d+)_(\w+)$")
_WINDOWS = {"win_amd64": "x86_64-pc-windows-msvc", "win32": "i686-pc-windows-msvc",
            "win_arm64": "aarch64-pc-windows-msvc"}
#: glibc levels uv resolves for (its --python-platform values), highest first.
_UV_GLIBC = (40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 28, 17)
_UV_ARCHES = {"x86_64": "x86_64", "aarch64": "aarch64"}
_MAC_ARCHES = {"x86_64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class Platform:
    """A ``--platform`` value: a wheel platform tag naming the newest system of its kind.

    ``accepts`` lists the platform tags an installer there takes, best first (for
    manylinux_2_28_x86_64: manylinux_2_28 ... manylinux_2_5 and the old aliases);
    ``uv_name`` is the same platform in uv's ``--python-platform`` words.
    """

    tag: str
    uv_name: str
    accepts: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str) -> Platform:
        tag = raw.strip()
        legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", tag)
        linux = _MANYLINUX.fullmatch(tag)
        if legacy or linux:
            glibc, arch = ((_LEGACY_MANYLINUX[legacy.group(1)], legacy.group(2)) if legacy
                           else (int(linux.group(1)), linux.group(2)))  # type: ignore[union-attr]
            if arch not in _UV_ARCHES:
                raise UnknownPlatform(f"--platform {raw!r}: Linux on x86_64 or aarch64 only "
                                    "(the platforms the resolver knows)")
            level = next((n for n in _UV_GLIBC if n <= glibc), 17)
            return cls(tag, f"{arch}-manylinux_2_{level}", tuple(_manylinux_tags(glibc, arch)))
        musl = _MUSLLINUX.fullmatch(tag)
        if musl and musl.group(2) in _UV_ARCHES:
            minor, arch = int(musl.group(1)), musl.group(2)
            return cls(tag, f"{arch}-unknown-linux-musl",
                       tuple(f"musllinux_1_{m}_{arch}" for m in range(minor, -1, -1)))
        mac = _MACOS.fullmatch(tag)
        if mac and mac.group(3) in _MAC_ARCHES:
            version, arch = (int(mac.group(1)), int(mac.group(2))), mac.group(3)
            return cls(tag, f"{_MAC_ARCHES[arch]}-apple-darwin",
                       tuple(tags.mac_platforms(version, arch)))
        if tag in _WINDOWS:
            return cls(tag, _WINDOWS[tag], (tag,))
        raise UnknownPlatform(f"--platform {raw!r}: expected a wheel platform tag such as "
                            "manylinux_2_28_x86_64, musllinux_1_2_x86_64, macosx_11_0_arm64 "
                            "or win_amd64")


def _manylinux_tags(glibc: int, arch: str) -> Iterator[str]:
    """manylinux_2_<glibc> down to the oldest, each old alias beside its level (as pip orders them)."""
    oldest = 5 if arch in ("x86_64", "i686") else 17
    for minor in range(glibc, oldest - 1, -1):
        yield f"manylinux_2_{minor}_{arch}"
        for alias, level in _LEGACY_MANYLINUX.items():
            if level == minor:
                yield f"{alias}_{arch}"


@functools.lru_cache(maxsize=256)
def _priorities(python: tuple[int, int], platforms: tuple[str, ...]) -> dict[tags.Tag, int]:
    """Each tag an installer for ``python`` on ``platforms`` takes, with its rank (0 = best)."""
    ordered = [*tags.cpython_tags(python, platforms=platforms),
               *tags.compatible_tags(python, f"cp{python[0]}{python[1]}", platforms)]
    ranks: dict[tags.Tag, int] = {}
    for rank, tag in enumerate(ordered):
        ranks.setdefault(tag, rank)
    return ranks


def installed_wheels(wheels: list[PageFile], python: tuple[int, int],
                     platform: Platform) -> list[PageFile]:
    """The wheels pip would install for ``python`` on each system ``platform`` covers.

    An installer takes the best-ranked wheel among those its system accepts, so
    a glibc 2.17 machine and a glibc 2.34 one may pick different files of one
    version: each level that some wheel is built for is asked once. Empty when
    no wheel fits at all.
    """
    parsed = []
    for f in wheels:
        try:
            parsed.append((f, parse_wheel_filename(f.filename)[3]))
        except InvalidWheelFilename:
            continue
    # The levels worth asking: the newest, and each one a wheel is built for.
    starts = {0} | {platform.accepts.index(tag.platform)
                    for _, wheel_tags in parsed for tag in wheel_tags
                    if tag.platform in platform.accepts}
    chosen: dict[str, PageFile] = {}
    for start in sorted(starts):
        ranks = _priorities(python, platform.accepts[start:])
        ranked = [(min(ranks[t] for t in wheel_tags if t in ranks), f)
                  for f, wheel_tags in parsed if any(t in ranks for t in wheel_tags)]
        if ranked:
            best = min(ranked, key=lambda pair: pair[0])[1]
            chosen[best.filename] = best
    return list(chosen.values())
