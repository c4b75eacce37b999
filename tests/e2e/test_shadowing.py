"""Shadowing you can see and undo: the upload warning, merge / shadow at runtime from the
JSON API, the UI and the CLI (audit-logged), releasing an empty private project, and
every refusal. Real twine, uv, pip and the real server; the fake upstream only."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.clients import Clients, installed_version, uv_binary
from tests.support.cloud import server_storage_env
from tests.support.proxy import file_url, module_fixtures, page_files
from tests.support.server import HavartiServer, clean_env
from tests.support.uploads import assert_refused, post_upload

upstream, server, upstream_restored = module_fixtures({"UPSTREAM_MERGE": "merged-default"})

AUTH = ("havarti", PASSCODE)
WARNING = "warning: upstream also has a project named"


def cli(server: HavartiServer, *args: str) -> subprocess.CompletedProcess[str]:
    """``havarti`` on the server's own database and storage, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "havarti.cli", *args],
        env=clean_env({"PACKAGE_CACHE": str(server.data_dir), **server_storage_env(server.data_dir),
                       **server.env}),
        capture_output=True, text=True, timeout=120)


def twine(clients: Clients, server: HavartiServer, dist: dists.Dist) -> str:
    """Upload with ``twine --verbose`` (which prints a successful upload's body); its output."""
    path = dist.write(clients.work / "uploads")
    result = clients.run([sys.executable, "-m", "twine", "upload", "--non-interactive",
                          "--disable-progress-bar", "--verbose", "--repository-url", server.url,
                          "-u", "havarti", "-p", PASSCODE, str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    return " ".join((result.stdout + result.stderr).split())


def test_first_upload_of_an_upstream_name_warns_in_the_response_and_the_log(server, upstream,
                                                                            clients):
    upstream.publish("gouda", dists.wheel("gouda", "2.0"), "2.0")
    upstream.publish("gouda", dists.wheel("gouda", "2.1"), "2.1")

    shown = twine(clients, server, dists.wheel("gouda", "99.0"))
    assert WARNING in shown and "'gouda'" in shown and "2 upstream files are no longer offered" in shown
    assert "havarti project gouda --merge" in shown
    assert "upload-shadows-upstream project=gouda upstream_files=2" in server.log()

    # Only the first upload warns: the second goes into a project already private.
    second = post_upload(server.url, dists.wheel("gouda", "99.1"), PASSCODE)
    assert second.status_code == 200 and WARNING not in second.text

    # uv publish shows a successful upload's body at -vv (trace).
    upstream.publish("edam", dists.wheel("edam", "1.0"), "1.0")
    path = dists.wheel("edam", "5.0").write(clients.work / "uploads")
    result = clients.run([uv_binary(), "publish", "-vv", "--publish-url", server.url,
                          "-u", "havarti", "-p", PASSCODE, str(path)])
    assert result.returncode == 0, result.stderr
    assert WARNING in result.stderr and "'edam'" in result.stderr


def test_a_name_upstream_lacks_uploads_without_a_warning(server, upstream, clients):
    shown = twine(clients, server, dists.wheel("only-ours", "1.0"))
    assert "OK: stored only_ours-1.0-py3-none-any.whl" in shown
    assert WARNING not in shown
    assert "upload-shadows-upstream project=only-ours" not in server.log()


def test_merge_shadow_and_release_at_runtime(server, upstream, clients):
    public = dists.wheel("brie", "2.0")
    upstream.publish("brie", public, "2.0")
    private = dists.wheel("brie", "1.0")
    twine(clients, server, private)
    assert set(page_files(server, "brie")) == {private.filename}
    page = httpx.get(f"{server.url}/projects/brie/").text
    assert "private: shadows the public project of this name" in page
    assert f'href="{upstream.url}brie/"' in page and "1 upstream file</a>" in page
    assert 'action="/projects/brie/upstream/merge"' in page

    # Merge, from the JSON API: pip sees the public files at once, and takes the newest.
    merged = httpx.post(f"{server.url}/api/projects/brie/merge", auth=AUTH)
    assert merged.status_code == 200, merged.text
    assert merged.json() == {"project": "brie", "private": True, "upstream_mode": "merge",
                             "shadows_upstream": False, "files": 1}
    assert set(page_files(server, "brie")) == {private.filename, public.filename}
    result, target = clients.pip_install(server.index_url, "brie")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "brie") == "2.0"
    assert "private: merged with the public project of this name" in httpx.get(
        f"{server.url}/projects/brie/").text

    # Shadow again, from the CLI: the running server hides the public files at once.
    shadowed = cli(server, "project", "brie", "--shadow")
    assert shadowed.returncode == 0, shadowed.stderr
    assert shadowed.stdout.strip() == ("brie: private, shadows upstream (hides 1 upstream file); "
                                       "1 private file; mode: shadow")
    assert set(page_files(server, "brie")) == {private.filename}
    assert httpx.get(file_url(server, "brie", public.filename)).status_code == 404

    # Release: refused while a private file is left, then the public project is back.
    refused = httpx.post(f"{server.url}/api/projects/brie/release", auth=AUTH)
    assert_refused(refused, 409, "still has 1 private file", "delete them")
    deleted = httpx.delete(f"{server.url}/api/projects/brie/files/{private.filename}", auth=AUTH)
    assert deleted.status_code == 200, deleted.text
    page = httpx.get(f"{server.url}/projects/brie/").text
    assert "every file is yanked" not in page
    assert "Every private file was deleted, yet this project still shadows" in page
    assert 'action="/projects/brie/upstream/release"' in page
    released = httpx.post(f"{server.url}/api/projects/brie/release", auth=AUTH)
    assert released.status_code == 200, released.text
    assert released.json() == {"project": "brie", "private": False, "upstream_mode": None,
                               "shadows_upstream": False, "files": 0}
    assert set(page_files(server, "brie")) == {public.filename}
    for install in (clients.pip_install, clients.uv_install):
        result, target = install(server.index_url, "brie")
        assert result.returncode == 0, result.stderr
        assert installed_version(target, "brie") == "2.0"
    assert "upstream-standing" not in httpx.get(f"{server.url}/projects/brie/").text

    # Every change is in the audit log and the server's log, newest first.
    audit = httpx.get(f"{server.url}/api/projects/brie/audit", auth=AUTH).json()
    assert [c["action"] for c in audit["changes"]] == ["release", "delete", "shadow", "merge"]
    assert audit["changes"][2]["remote_addr"] == "cli"
    log = server.log()
    for action in ("merge", "release"):  # the shadow came from the CLI, not the server
        assert f"manage action={action} project=brie" in log


def test_runtime_shadow_wins_over_upstream_merge_and_survives_a_restart(server, upstream,
                                                                        clients):
    public = dists.wheel("merged-default", "3.0")
    upstream.publish("merged-default", public, "3.0")
    private = dists.wheel("merged-default", "1.0")
    shown = twine(clients, server, private)
    assert WARNING not in shown  # merged by UPSTREAM_MERGE: nothing is hidden
    assert set(page_files(server, "merged-default")) == {private.filename, public.filename}

    # The UI's form (same-origin, with the passcode), as a browser posts it.
    response = httpx.post(f"{server.url}/projects/merged-default/upstream/shadow", auth=AUTH,
                          headers={"Origin": server.url})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/projects/merged-default/")
    assert set(page_files(server, "merged-default")) == {private.filename}
    server.restart()
    assert set(page_files(server, "merged-default")) == {private.filename}
    state = cli(server, "project", "merged-default")
    assert state.returncode == 0, state.stderr
    assert "private, shadows upstream" in state.stdout and "mode: shadow" in state.stdout


def test_refusals(server, upstream, clients):
    upstream.publish("stilton", dists.wheel("stilton", "1.0"), "1.0")
    private = dists.wheel("stilton", "0.1")
    twine(clients, server, private)
    before = page_files(server, "stilton")

    for path in ("/api/projects/stilton/merge", "/api/projects/stilton/release",
                 "/projects/stilton/upstream/merge"):
        assert_refused(httpx.post(server.url + path), 401, "passcode")
        assert_refused(httpx.post(server.url + path, auth=("havarti", "wrong")), 401, "passcode")
    assert_refused(httpx.get(f"{server.url}/api/projects/stilton"), 401, "passcode")
    assert_refused(httpx.post(f"{server.url}/api/projects/no-such-cheese/merge", auth=AUTH),
                   404, "no-such-cheese")
    assert_refused(httpx.post(f"{server.url}/api/projects/no-such-cheese/release", auth=AUTH),
                   404, "no-such-cheese")
    assert_refused(httpx.post(f"{server.url}/api/projects/stilton/swap", auth=AUTH),
                   404, "merge, shadow, release")
    assert_refused(httpx.post(f"{server.url}/api/projects/stilton/release", auth=AUTH),
                   409, "still has 1 private file")
    # A cross-site form post is refused before the passcode is looked at.
    assert_refused(httpx.post(f"{server.url}/projects/stilton/upstream/merge", auth=AUTH,
                              headers={"Origin": "https://elsewhere.example"}), 403, "cross-site")
    # An upstream project Havarti merely cached is not private: nothing to merge or release.
    upstream.publish("cheddar", dists.wheel("cheddar", "1.0"), "1.0")
    assert page_files(server, "cheddar")
    result, _ = clients.pip_install(server.index_url, "cheddar")
    assert result.returncode == 0, result.stderr
    assert_refused(httpx.post(f"{server.url}/api/projects/cheddar/merge", auth=AUTH),
                   409, "not private")
    assert_refused(httpx.post(f"{server.url}/api/projects/cheddar/release", auth=AUTH),
                   409, "not private")
    assert page_files(server, "stilton") == before

    for args, words in ((["project", "no-such-cheese", "--merge"], "no project named"),
                        (["project", "stilton", "--release"], "still has 1 private file")):
        result = cli(server, *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith("havarti: ") and words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert "manage action=release project=stilton" not in server.log()
