"""`havarti worker` and `havarti prefetch` as a user runs them (embedded default: no services)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.server import clean_env, free_port


def havarti(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "havarti.cli", *args], env=clean_env(env),
                          capture_output=True, text=True, timeout=120)


def test_worker_without_redis_is_refused(tmp_path: Path) -> None:
    result = havarti(["worker"], {"PACKAGE_CACHE": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "havarti: REDIS_URI is not set: a downloader takes its jobs from Redis "
        "(without it, jobs run inside the web process)"]


@pytest.mark.parametrize(("args", "content", "message"), [
    (["-r", "absent.txt"], None, "absent.txt"),
    (["-r", "requirements.txt"], "ok-package\n===\n", "requirements.txt:2: not a requirement"),
    (["-r", "requirements.txt", "--python-version", "3"], "ok-package\n",
     "--python-version '3': expected MAJOR.MINOR"),
    (["-r", "requirements.txt", "--platform", "any"], "ok-package\n",
     "--platform 'any': expected a wheel platform tag such as manylinux_2_28_x86_64"),
])
def test_prefetch_refusals_are_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                                   content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "requirements.txt").write_text(content)
    args = [str(tmp_path / a) if a.endswith(".txt") else a for a in args]
    result = havarti(["prefetch", *args], {"PACKAGE_CACHE": str(tmp_path / "data")})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_prefetch_with_the_broker_unreachable_is_refused_at_once(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("ok-package\n")
    env = {"PACKAGE_CACHE": str(tmp_path / "data"), "REDIS_URI": f"redis://127.0.0.1:{free_port()}/0"}
    result = havarti(["prefetch", "-r", str(tmp_path / "requirements.txt")], env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("havarti: the broker (Redis) is unavailable: ")


def test_prefetch_caches_dependencies_unless_no_deps(tmp_path: Path) -> None:
    upstream = FakeIndex().start()
    try:
        app = dists.wheel("needs-dep", "1.0", requires=("the-dep<2",))
        dep, too_new = dists.wheel("the-dep", "1.5"), dists.wheel("the-dep", "2.0")
        upstream.publish("needs-dep", app, "1.0")
        upstream.publish("the-dep", dep, "1.5")
        upstream.publish("the-dep", too_new, "2.0")
        requirements = tmp_path / "requirements.txt"
        requirements.write_text("needs-dep==1.0\n")
        env = {"PACKAGE_CACHE": str(tmp_path / "data"), "FALLBACK": upstream.url}

        result = havarti(["prefetch", "-r", str(requirements), "--no-deps"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"1 of 1 files cached, {len(app.data):,} bytes" in result.stdout
        assert upstream.fetch_count(dep.filename) == 0

        result = havarti(["prefetch", "-r", str(requirements)], env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"2 of 2 files cached, {len(app.data) + len(dep.data):,} bytes" in result.stdout
        assert (upstream.fetch_count(dep.filename), upstream.fetch_count(too_new.filename)) == (1, 0)

        # A resolution that cannot succeed: the resolver's reason, on one line.
        requirements.write_text("needs-dep==1.0\nthe-dep>=2\n")
        result = havarti(["prefetch", "-r", str(requirements)], env)
        assert result.returncode == 1, result.stdout + result.stderr
        failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED ")]
        assert len(failed) == 1 and failed[0].startswith(
            "FAILED dependencies for Python "), result.stdout
        assert "the-dep" in failed[0] and "unsatisfiable" in failed[0]
    finally:
        upstream.down()


def test_prefetch_caches_matching_files_and_reports_failures(tmp_path: Path) -> None:
    upstream = FakeIndex().start()
    try:
        old, new = dists.wheel("warm-me", "1.0"), dists.wheel("warm-me", "2.0")
        upstream.publish("warm-me", old, "1.0")
        upstream.publish("warm-me", new, "2.0")
        pinned = dists.wheel("pinned", "1.0", payload_size=5000)
        upstream.publish("pinned", pinned, "1.0")
        upstream.publish("pinned", dists.wheel("pinned", "1.1"), "1.1")
        broken = dists.wheel("broken", "1.0")
        upstream.publish("broken", broken, "1.0")
        upstream.corrupt(broken.filename)
        requirements = tmp_path / "requirements.txt"
        requirements.write_text("warm-me\npinned==1.0\n")
        env = {"PACKAGE_CACHE": str(tmp_path / "data"), "FALLBACK": upstream.url}

        result = havarti(["prefetch", "-r", str(requirements), "--python-version", "3.11"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        size = len(new.data) + len(pinned.data)
        assert f"2 of 2 files cached, {size:,} bytes" in result.stdout
        assert upstream.fetch_count(new.filename) == 1
        assert upstream.fetch_count(pinned.filename) == 1
        assert upstream.fetch_count(old.filename) == 0

        requirements.write_text("warm-me\nbroken\nno-such-project\n")
        result = havarti(["prefetch", "-r", str(requirements)], env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "1 of 2 files cached" in result.stdout
        assert "FAILED no-such-project: no project named 'no-such-project'" in result.stdout
        assert f"FAILED {broken.filename}: " in result.stdout
        assert upstream.fetch_count(new.filename) == 1  # already cached: not fetched again
    finally:
        upstream.down()
