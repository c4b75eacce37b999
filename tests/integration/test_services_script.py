"""scripts/services.sh on ports of one's own: a second local Swift beside the first, as a
second `scripts/test` run on the same machine would start (README, Local test servers)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support.cloud import swift_settings
from tests.support.services import unavailable

SCRIPTS = Path(__file__).parents[2] / "scripts"


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports nothing listens on."""
    for _ in range(200):
        first = random.randrange(20000, 40000)
        sockets = []
        try:
            for port in range(first, first + count):
                probe = socket.socket()
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise RuntimeError("no free ports")


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=3) as answer:
            return answer.read() == b"OK"
    except OSError:
        return False


@pytest.mark.services
def test_a_second_swift_on_other_ports_runs_beside_the_first(tmp_path):
    first = swift_settings()  # the one scripts/services.sh started for this run
    if not (Path("/opt/swift-venv/bin/swift-proxy-server").exists() and shutil.which("memcached")):
        unavailable("Swift or memcached is not installed (scripts/services.sh installs them)")
    base = free_ports(3)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "SWIFT_PORT": str(free_ports(1)),
           "SWIFT_BASE_PORT": str(base), "SWIFT_MEMCACHE_PORT": str(free_ports(1)),
           "SWIFT_DIR": str(tmp_path / "swift")}
    port = int(env["SWIFT_PORT"])
    try:
        started = subprocess.run(["bash", str(SCRIPTS / "services.sh")], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        # It says what it starts, on stderr; the settings it prints name its own port.
        assert f"Swift on 127.0.0.1:{port}" in started.stderr
        assert f"HAVARTI_TEST_S3_ENDPOINT_URL=http://127.0.0.1:{port}" in started.stdout
        assert healthy(port)
        assert healthy(int(first["S3_ENDPOINT_URL"].rsplit(":", 1)[1]))
    finally:
        subprocess.run(["bash", str(SCRIPTS / "swift-saio.sh"), "stop"], env=env,
                       capture_output=True, timeout=60)
    assert not healthy(port)
    assert healthy(int(first["S3_ENDPOINT_URL"].rsplit(":", 1)[1]))
