"""`havarti prefetch`, then an upstream outage: pip and uv still install the same
requirements, dependencies included, from what the prefetch stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import dists
from tests.support.clients import Clients, installed_version
from tests.support.fakeindex import FakeIndex
from tests.support.server import HavartiServer, clean_env

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"


def havarti(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "havarti.cli", *args], env=clean_env(env),
                          capture_output=True, text=True, timeout=300)


def publish(upstream: FakeIndex) -> tuple[list[dists.Dist], list[dists.Dist]]:
    """A project with dependencies two levels deep, a platform-specific one and one behind
    a marker: (the files an install on this machine needs, files it must not need)."""
    app = dists.wheel("outage-app", "1.0", requires=(
        "outage-lib>=1.1", "outage-native", "outage-windows; sys_platform == 'win32'"))
    old_lib = dists.wheel("outage-lib", "1.0")
    lib = dists.wheel("outage-lib", "2.0", requires=("outage-leaf",))
    leaf = dists.wheel("outage-leaf", "3.1")
    native = dists.wheel("outage-native", "1.0", tag=f"{CP}-{CP}-manylinux_2_17_x86_64")
    foreign = [dists.wheel("outage-native", "1.0", tag=f"{CP}-{CP}-win_amd64"),
               dists.wheel("outage-native", "1.0", tag=f"{CP}-{CP}-macosx_11_0_arm64"),
               dists.wheel("outage-native", "1.0", tag=f"{CP}-{CP}-musllinux_1_2_x86_64")]
    windows = dists.wheel("outage-windows", "1.0")
    for name, dist, version in [("outage-app", app, "1.0"), ("outage-lib", old_lib, "1.0"),
                                ("outage-lib", lib, "2.0"), ("outage-leaf", leaf, "3.1"),
                                ("outage-native", native, "1.0"),
                                *[("outage-native", f, "1.0") for f in foreign],
                                ("outage-windows", windows, "1.0")]:
        upstream.publish(name, dist, version)
    return [app, lib, leaf, native], [old_lib, *foreign, windows]


def test_prefetch_then_outage_pip_and_uv_install_with_dependencies(
        tmp_path: Path, upstream: FakeIndex, clients: Clients) -> None:
    needed, unneeded = publish(upstream)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("outage-app\n")
    data = tmp_path / "data"
    env = {"PACKAGE_CACHE": str(data), "FALLBACK": upstream.url, "UPSTREAM_TIMEOUT": "2"}

    result = havarti(["prefetch", "-r", str(requirements), "--python-version", PYTHON], env)
    assert result.returncode == 0, result.stdout + result.stderr
    size = sum(len(d.data) for d in needed)
    assert f"{len(needed)} of {len(needed)} files cached, {size:,} bytes" in result.stdout
    assert {d.filename: upstream.fetch_count(d.filename) for d in needed} == {
        d.filename: 1 for d in needed}
    # Not other platforms' wheels, nor what a marker leaves out, nor versions not chosen.
    assert {d.filename: upstream.fetch_count(d.filename) for d in unneeded} == {
        d.filename: 0 for d in unneeded}

    upstream.down()
    server = HavartiServer(data, env).start()
    try:
        for install in (clients.pip_install, clients.uv_install):
            result, target = install(server.index_url, "outage-app")
            assert result.returncode == 0, f"{install.__name__}: {result.stdout}{result.stderr}"
            assert {module: installed_version(target, module)
                    for module in ("outage_app", "outage_lib", "outage_leaf", "outage_native")} == {
                "outage_app": "1.0", "outage_lib": "2.0", "outage_leaf": "3.1",
                "outage_native": "1.0"}, install.__name__
    finally:
        server.stop()
