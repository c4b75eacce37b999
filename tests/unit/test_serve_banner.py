"""What `havarti serve` prints: settings that paste as they are, and one warning line for
each service it cannot reach (it serves on regardless)."""

from __future__ import annotations

import configparser
import socket
import time
import tomllib

from havarti.checks import START_PROBE_SECONDS, unreachable_at_start
from havarti.cli import banner
from havarti.config import load_settings
from tests.support.server import free_port


def block(text: str, title: str) -> str:
    """The lines after ``title:`` up to the next blank line."""
    after = text.split(f"\n{title}:\n", 1)[1]
    return after.split("\n\n", 1)[0].rstrip("\n")


def test_banner_prints_pip_conf_and_uv_toml_as_blocks_that_paste():
    settings = load_settings({"HOST": "127.0.0.1", "PORT": "8123"})
    text = banner(settings)
    pip_conf = configparser.ConfigParser()
    pip_conf.read_string(block(text, "pip.conf (~/.config/pip/pip.conf)"))
    assert dict(pip_conf["global"]) == {"index-url": "http://127.0.0.1:8123/simple/",
                                        "trusted-host": "127.0.0.1"}
    uv = tomllib.loads(block(text, "uv.toml (or [[tool.uv.index]] in pyproject.toml)"))
    assert uv == {"index": [{"name": "havarti", "url": "http://127.0.0.1:8123/simple/",
                             "default": True}]}
    assert block(text, "pip") == "pip install -i http://127.0.0.1:8123/simple/ <package>"
    assert block(text, "twine and uv publish").splitlines() == [
        'twine upload --repository-url http://127.0.0.1:8123/ -u havarti -p "$PASSCODE" dist/*',
        'uv publish --publish-url http://127.0.0.1:8123/ -u havarti -p "$PASSCODE" dist/*']
    assert "warning" not in text


def test_banner_has_no_trusted_host_for_https_and_never_the_database_password():
    text = banner(load_settings({"PUBLIC_URL": "https://pkgs.example.test/",
                                 "DB_URI": "postgresql://havarti:hunter2@db.internal/havarti"}))
    assert "trusted-host" not in text
    assert "index-url = https://pkgs.example.test/simple/" in text
    assert "hunter2" not in text and "db.internal/havarti" in text


def test_unreachable_redis_and_upstream_are_one_warning_line_each_within_a_second():
    settings = load_settings({"REDIS_URI": f"redis://:hunter2@127.0.0.1:{free_port()}/0",
                              "FALLBACK": f"http://127.0.0.1:{free_port()}/simple/"})
    started = time.monotonic()
    warnings = unreachable_at_start(settings)
    assert time.monotonic() - started < START_PROBE_SECONDS + 0.5
    assert [w.split(" (")[0] for w in warnings] == ["warning: REDIS_URI", "warning: FALLBACK"]
    assert all("\n" not in w and "serving goes on" in w for w in warnings)
    assert "hunter2" not in "".join(warnings)
    text = banner(settings, warnings)
    assert [line.strip() for line in text.splitlines() if "warning" in line] == warnings


def test_a_silent_address_costs_at_most_the_probe_timeout():
    # A listener whose backlog is full does not complete the handshake: like a firewalled host.
    settings = load_settings({"FALLBACK": "http://10.255.255.1:9/simple/"})
    started = time.monotonic()
    unreachable_at_start(settings, timeout=0.3)
    assert time.monotonic() - started < 0.3 + 0.5


def test_reachable_services_give_no_warning():
    with socket.socket() as redis_like, socket.socket() as upstream_like:
        for listener in (redis_like, upstream_like):
            listener.bind(("127.0.0.1", 0))
            listener.listen()
        settings = load_settings({
            "REDIS_URI": f"redis://127.0.0.1:{redis_like.getsockname()[1]}/0",
            "FALLBACK": f"http://127.0.0.1:{upstream_like.getsockname()[1]}/simple/"})
        assert unreachable_at_start(settings) == []
