"""The ways Havarti starts: `havarti serve`, the seed's gunicorn and Celery lines, and their errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from dataclasses import fields

import httpx
import pytest
from click.testing import CliRunner, Result

from havarti.cli import main
from havarti.config import Settings
from tests.conftest import PASSCODE
from tests.e2e.test_upload import assert_refused
from tests.support import dists
from tests.support.clients import installed_version
from tests.support.server import HavartiServer, clean_env, free_port
from tests.support.uploads import post_upload, stored_objects

HAVARTI = [sys.executable, "-m", "havarti.cli"]
JSON = "application/vnd.pypi.simple.v1+json"


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=clean_env(env), capture_output=True, text=True, timeout=timeout)


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], variable: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "Traceback" not in result.stderr


# The seed's entry points


def test_seed_gunicorn_command_serves(start_server, upstream, clients, tmp_path):
    port = free_port()
    server = HavartiServer(tmp_path / "data", {"PASSCODE": PASSCODE, "FALLBACK": upstream.url},
                           port=port, command=[sys.executable, "-m", "gunicorn", "-w", "2",
                                               "--preload", "-b", f"127.0.0.1:{port}", "havarti:app"])
    try:
        server.start()
        dist = dists.wheel("seeded", "3.1")
        assert post_upload(server.url, dist, PASSCODE).status_code == 200
        result, target = clients.pip_install(server.index_url, "seeded")
        assert result.returncode == 0, result.stderr
        assert installed_version(target, "seeded") == "3.1"
    finally:
        server.stop()


def test_serve_on_granian_serves_pip_uv_and_twine(start_server, upstream, clients, tmp_path):
    # WEB_SERVER=granian: the same application behind the faster, unguarded server.
    upstream.publish("proxied", dists.wheel("proxied", "2.0"), "2.0")
    server = start_server({"PASSCODE": PASSCODE, "FALLBACK": upstream.url,
                           "WEB_SERVER": "granian"})
    assert httpx.get(f"{server.url}/health").headers["server"] == "granian"
    wheel = dists.wheel("granite", "1.0")
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.data)
    uploaded = clients.twine_upload(server.url, PASSCODE, path)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    for install in (clients.pip_install, clients.uv_install):
        result, target = install(server.index_url, "granite", "proxied")
        assert result.returncode == 0, result.stderr
        assert installed_version(target, "granite") == "1.0"
        assert installed_version(target, "proxied") == "2.0"
    page = httpx.get(f"{server.index_url}granite/", headers={"Accept": JSON})
    again = httpx.get(f"{server.index_url}granite/",
                      headers={"Accept": JSON, "If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
    assert post_upload(server.url, wheel, "wrong").status_code == 401


def test_celery_finds_the_same_app(tmp_path):
    # celery --app=havarti resolves havarti.app through find_app: it must be a Celery app.
    code = ("from celery import Celery; from celery.app.utils import find_app; import havarti; "
            "app = find_app('havarti'); "
            "assert isinstance(app, Celery), type(app); assert app is havarti.app; "
            "assert callable(app); print('ok', app.main)")
    result = run([sys.executable, "-c", code], {"PACKAGE_CACHE": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok havarti"


def test_importing_havarti_has_no_side_effects(tmp_path):
    # A malformed PORT would stop start-up; a mere import must not read it, nor create anything.
    home = tmp_path / "home"
    home.mkdir()
    code = ("import sys, havarti; "
            "assert 'havarti.application' not in sys.modules and 'flask' not in sys.modules; "
            "print(havarti.__version__)")
    result = run([sys.executable, "-c", code], {"HOME": str(home), "PORT": "not-a-port",
                                                 "PACKAGE_CACHE": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "data").exists()
    assert list(home.iterdir()) == []


# Configuration errors: one line naming the variable, exit 2


# A few, end to end; tests/unit/test_config.py has every variable.
BAD_SETTINGS = [
    ({"PORT": "eighty"}, "PORT"),
    ({"STORAGE": "floppy"}, "STORAGE"),
    ({"STORAGE": "s3storage", "S3_ACCESS_KEY": "k", "S3_SECRET_KEY": "s"}, "S3_BUCKET"),
    ({"READ_AUTH": "perhaps"}, "READ_AUTH"),
]


@pytest.mark.parametrize("env,variable", BAD_SETTINGS, ids=[v for _, v in BAD_SETTINGS])
def test_serve_refuses_bad_settings(tmp_path, env, variable):
    result = run([*HAVARTI, "serve"], {"PACKAGE_CACHE": str(tmp_path / "data"), **env})
    assert_one_line_exit_2(result, variable)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("env,variable", [BAD_SETTINGS[0], BAD_SETTINGS[2]],
                         ids=["PORT", "S3_BUCKET"])
def test_seed_gunicorn_refuses_bad_settings(tmp_path, env, variable):
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "--preload",
               "-b", f"127.0.0.1:{free_port()}", "havarti:app"]
    result = run(command, {"PACKAGE_CACHE": str(tmp_path / "data"), **env})
    assert_one_line_exit_2(result, variable)


def test_gunicorn_without_preload_stops_instead_of_respawning(tmp_path):
    # Each worker loads the app; gunicorn's own "app failed to load" code (4) stops the master.
    # (When two workers fail at the same instant gunicorn itself trips over the second one
    # and exits 1 with its traceback; either way it stops rather than respawning forever.)
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{free_port()}",
               "havarti:app"]
    result = run(command, {"PACKAGE_CACHE": str(tmp_path / "data"), "PORT": "eighty"}, timeout=60)
    assert result.returncode in (4, 1), result.stderr
    assert "App failed to load" in result.stderr
    assert "havarti: configuration error: PORT='eighty': expected a whole number" in result.stderr


def invoke(args: list[str], env: dict[str, str]) -> Result:
    """The CLI in this process (no interpreter start-up), with only ``env`` of Havarti's variables."""
    cleared: dict[str, str | None] = {name: None for f in fields(Settings)
                                      for name in f.metadata["env"]}
    return CliRunner().invoke(main, args, env={**cleared, **env})


def test_unreachable_database_is_one_line(tmp_path):
    env = {"PACKAGE_CACHE": str(tmp_path / "data"),
           "DB_URI": f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"}
    assert_one_line_exit_2(run([*HAVARTI, "serve"], env), "start-up failed")
    result = invoke(["db", "upgrade"], env)
    assert result.exit_code == 2
    assert result.stderr.startswith("havarti: start-up failed: OperationalError")
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_help_documents_host_port_workers():
    result = invoke(["serve", "--help"], {})
    assert result.exit_code == 0
    for option, variable in (("--host", "HOST"), ("--port", "PORT"),
                             ("--workers", "WEB_CONCURRENCY"), ("--threads", "WEB_THREADS")):
        assert option in result.stdout and variable in result.stdout


def test_db_upgrade_is_idempotent(tmp_path):
    env = {"PACKAGE_CACHE": str(tmp_path / "data")}
    for _ in range(2):
        result = invoke(["db", "upgrade"], env)
        assert result.exit_code == 0, result.output
        assert "up to date" in result.stdout
    with sqlite3.connect(tmp_path / "data" / "havarti.db") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
        versions = db.execute("select version_num from alembic_version").fetchall()
    assert {"projects", "files"} <= tables
    assert len(versions) == 1


# The embedded default


def test_embedded_default_starts_with_no_environment(tmp_path):
    """Nothing set but PORT (and HOME, for the default data directory ~/.havarti-packages),
    and FALLBACK: `serve` checks at start that the upstream can be connected to, and tests
    never reach the internet (the default upstream is checked in tests/unit/test_config.py)."""
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "havarti.cli", "serve"],
                                   env=clean_env({"HOME": str(home), "PORT": str(port),
                                                  "FALLBACK": f"http://127.0.0.1:{free_port()}/simple/"}),
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail(log.read_text())
        output = log.read_text()
        url = f"http://127.0.0.1:{port}"
        assert f"pip install -i {url}/simple/" in output
        assert f"uv pip install --index-url {url}/simple/" in output
        assert f"twine upload --repository-url {url}/" in output
        assert f"uv publish --publish-url {url}/" in output
        data = home / ".havarti-packages"
        assert (data / "havarti.db").is_file() and (data / "files").is_dir()
        # Without a PASSCODE, uploads are refused, saying how to enable them; nothing is kept.
        for password in (None, "anything"):
            refused = post_upload(url, dists.wheel("no-passcode", "1.0"), password)
            assert_refused(refused, 403, "PASSCODE", "disabled")
        assert stored_objects(data) == {}
        assert httpx.get(f"{url}/simple/", headers={"Accept": JSON}).json()["projects"] == []
    finally:
        import os
        import signal

        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


# Data that lasts, and reading behind the passcode


def test_restart_keeps_everything(server, clients):
    wheel = dists.wheel("durable", "1.0")
    assert post_upload(server.url, wheel, PASSCODE).status_code == 200
    page_before = httpx.get(f"{server.index_url}durable/",
                            headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    meta_before = httpx.get(f"{server.url}/files/durable/{wheel.filename}.metadata").content
    server.restart()
    page_after = httpx.get(f"{server.index_url}durable/",
                           headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert page_after == page_before
    assert httpx.get(f"{server.url}/files/durable/{wheel.filename}.metadata").content == meta_before
    result, target = clients.pip_install(server.index_url, "durable")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "durable") == "1.0"
    # Still immutable after the restart.
    assert post_upload(server.url, wheel, PASSCODE).status_code == 409


def test_read_auth_protects_pages_and_files(start_server, upstream, clients):
    server = start_server({"PASSCODE": PASSCODE, "READ_AUTH": "true", "FALLBACK": upstream.url})
    wheel = dists.wheel("guarded", "1.0")
    assert post_upload(server.url, wheel, PASSCODE).status_code == 200
    paths = ["/simple/", "/simple/guarded/", f"/files/guarded/{wheel.filename}",
             f"/files/guarded/{wheel.filename}.metadata", "/pypi/guarded/json"]
    for path in paths:
        for auth in (None, ("havarti", "wrong")):
            response = httpx.get(server.url + path, auth=auth)
            assert response.status_code == 401, path
            assert response.headers["WWW-Authenticate"].lower().startswith("basic")
            assert "guarded" not in response.text
        assert httpx.get(server.url + path, auth=("anyone", PASSCODE)).status_code == 200, path
    assert httpx.get(server.url + "/health").status_code == 200

    authed = f"http://havarti:{PASSCODE}@127.0.0.1:{server.port}/simple/"
    result, target = clients.pip_install(authed, "guarded")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "guarded") == "1.0"
    result, target = clients.uv_install(authed, "guarded")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "guarded") == "1.0"


def test_read_auth_without_passcode_is_refused_at_start(tmp_path):
    result = run([*HAVARTI, "serve"], {"PACKAGE_CACHE": str(tmp_path / "data"), "READ_AUTH": "true"})
    assert_one_line_exit_2(result, "PASSCODE")


# A small web process


def test_web_process_imports_only_what_serving_needs(tmp_path):
    # What a `havarti serve` worker loads (migrated already, by the parent) while it serves
    # pages, files, /health and /metrics: no Celery, no storage SDKs of other backends,
    # no readme rendering, no migration tool, no page parser for pages it already holds.
    env = {"PACKAGE_CACHE": str(tmp_path / "data"), "PASSCODE": PASSCODE, "REDIS_URI": "redis://127.0.0.1:1/0"}
    assert invoke(["db", "upgrade"], env).exit_code == 0
    code = """
import sys
from havarti.server import lean_imports
lean_imports()
from werkzeug.test import Client
from havarti.application import Havarti
from havarti.config import load_settings
from tests.support import dists
from tests.support.uploads import upload_form
app = Havarti(load_settings(), migrate=False)
client = Client(app)
wheel = dists.wheel("lean", "1.0")
form = {**upload_form(wheel), "content": (__import__("io").BytesIO(wheel.data), wheel.filename)}
assert client.post("/", data=form, auth=("havarti", sys.argv[1])).status_code == 200
for path in ("/health", "/simple/lean/", "/simple/", f"/files/lean/{wheel.filename}",
             f"/files/lean/{wheel.filename}.metadata", "/metrics"):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    response.close()
heavy = ("celery", "kombu", "billiard", "boto3", "botocore", "swiftclient", "readme_renderer",
         "alembic", "pypi_simple", "pydantic", "bs4", "trio", "rich", "pygments")
print(sorted(name for name in heavy if sys.modules.get(name) is not None))
"""
    result = run([sys.executable, "-c", code, PASSCODE], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_a_web_process_loads_celery_at_its_first_job(tmp_path):
    # REDIS_URI set: jobs go to Celery, yet the web process loads Celery only to send one.
    code = """
import sys
from havarti.application import Havarti
from havarti.config import load_settings
runner = Havarti(load_settings(), migrate=False).holder._runner_factory(lambda: None)
print(runner.pending(), 'celery' in sys.modules)
print(runner.enqueue('cache_file', project='p', filename='f'), 'celery' in sys.modules)
"""
    env = {"PACKAGE_CACHE": str(tmp_path / "data"), "REDIS_URI": f"redis://127.0.0.1:{free_port()}/0"}
    result = run([sys.executable, "-c", code], env)
    assert result.returncode == 0, result.stderr
    # No Redis there: queue depth unknown (-1) and the job not queued, without Celery so far.
    assert result.stdout.split() == ["-1", "False", "False", "False"]
