"""The proxy path end to end: pip and uv install from the fake upstream through Havarti."""

from __future__ import annotations

from tests.support import dists
from tests.support.clients import installed_version


def test_pip_installs_from_upstream_then_survives_outage(server, upstream, clients):
    upstream.publish("fresh-thing", dists.wheel("fresh-thing", "1.0"), "1.0")

    result, target = clients.pip_install(server.index_url, "fresh-thing")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "fresh_thing") == "1.0"
    assert upstream.fetch_count("fresh_thing-1.0-py3-none-any.whl") == 1

    upstream.down()
    result, target = clients.pip_install(server.index_url, "fresh-thing")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "fresh_thing") == "1.0"


def test_uv_sees_new_upstream_version_on_next_request(server, upstream, clients):
    upstream.publish("moving", dists.wheel("moving", "1.0"), "1.0")
    result, target = clients.uv_install(server.index_url, "moving")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "moving") == "1.0"

    upstream.publish("moving", dists.wheel("moving", "2.0"), "2.0")
    result, target = clients.uv_install(server.index_url, "moving")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "moving") == "2.0"
