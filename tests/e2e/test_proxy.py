"""The caching proxy's pages through a real Havarti: freshness, outages, the JSON API, big pages.

One server and one fake upstream per module (a start costs seconds); every test
uses its own project names, and the upstream is restored after each test.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.clients import installed_version
from tests.support.proxy import (
    OUTAGES,
    STALE_HEADER,
    UPSTREAM_TIMEOUT,
    break_upstream,
    file_url,
    get_page,
    module_fixtures,
    page_files,
    running,
)

upstream, server, upstream_restored = module_fixtures()


def test_pip_installs_from_upstream_and_the_file_is_kept(server, upstream, clients):
    wheel = dists.wheel("kept-thing", "1.0")
    upstream.publish("kept-thing", wheel, "1.0")

    result, target = clients.pip_install(server.index_url, "kept-thing")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "kept_thing") == "1.0"
    result, target = clients.uv_install(server.index_url, "kept-thing")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "kept_thing") == "1.0"
    # The second install came from Havarti's copy.
    assert upstream.fetch_count(wheel.filename) == 1
    response = httpx.get(file_url(server, "kept-thing", wheel.filename))
    assert response.headers["X-Havarti-Cache"] == "hit"
    assert response.content == wheel.data


@pytest.mark.parametrize("outage", OUTAGES)
def test_install_survives_upstream_outage(server, upstream, clients, outage):
    project = f"outage-{outage}"
    wheel = dists.wheel(project, "1.0")
    upstream.publish(project, wheel, "1.0")
    result, _ = clients.uv_install(server.index_url, project)
    assert result.returncode == 0, result.stderr

    break_upstream(upstream, outage)
    started = time.monotonic()
    response = get_page(server, project)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert STALE_HEADER in response.headers
    assert [f["filename"] for f in response.json()["files"]] == [wheel.filename]
    # A hanging upstream costs one UPSTREAM_TIMEOUT, like any other failure costs its own time.
    assert elapsed < UPSTREAM_TIMEOUT + 1.5

    installer = clients.pip_install if outage == "refused" else clients.uv_install
    result, target = installer(server.index_url, project)
    assert result.returncode == 0, result.stderr
    assert installed_version(target, project.replace("-", "_")) == "1.0"
    assert f"upstream-stale project={project}" in server.log()


@pytest.mark.parametrize(("outage", "status"), [("refused", 502), ("hang", 504), ("error", 502),
                                                ("garbage", 502)])
def test_project_never_seen_during_outage_is_a_quick_5xx(server, upstream, outage, status):
    project = f"unseen-{outage}"
    upstream.publish(project, dists.wheel(project, "1.0"), "1.0")
    break_upstream(upstream, outage)

    started = time.monotonic()
    response = get_page(server, project)
    elapsed = time.monotonic() - started
    assert response.status_code == status
    assert project in response.text
    assert response.text.count("\n") == 1
    assert elapsed < UPSTREAM_TIMEOUT + 1.5


def test_new_version_visible_on_next_request_and_revalidation_costs_a_304(server, upstream):
    upstream.publish("revalidated", dists.wheel("revalidated", "1.0"), "1.0")
    first = page_files(server, "revalidated")
    assert upstream.page_count("revalidated") == 1

    assert page_files(server, "revalidated") == first
    assert upstream.page_count("revalidated") == 2
    assert upstream.not_modified_count("revalidated") == 1

    new = dists.wheel("revalidated", "2.0")
    upstream.publish("revalidated", new, "2.0")
    files = page_files(server, "revalidated")
    assert set(files) == set(first) | {new.filename}
    assert files[new.filename]["hashes"] == {"sha256": new.sha256}
    assert upstream.not_modified_count("revalidated") == 1


def test_index_ttl_trusts_the_stored_page(upstream, tmp_path):
    upstream.publish("trusted", dists.wheel("trusted", "1.0"), "1.0")
    with running(tmp_path / "data", {"FALLBACK": upstream.url, "INDEX_TTL": "300"}) as server:
        first = page_files(server, "trusted")
        upstream.publish("trusted", dists.wheel("trusted", "2.0"), "2.0")
        for _ in range(4):  # both web workers
            assert page_files(server, "trusted") == first
        assert upstream.page_count("trusted") == 1


def test_exclude_newer_picks_the_older_version_through_havarti(server, upstream, clients):
    old, new = dists.wheel("dated", "1.0"), dists.wheel("dated", "2.0")
    upstream.publish("dated", old, "1.0", upload_time=datetime(2024, 1, 10, tzinfo=UTC))
    upstream.publish("dated", new, "2.0", upload_time=datetime(2025, 3, 1, tzinfo=UTC))

    assert page_files(server, "dated")[old.filename]["upload-time"].startswith("2024-01-10T")
    result, target = clients.uv_install(server.index_url, "dated",
                                        extra=["--exclude-newer", "2024-06-01T00:00:00Z"])
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "dated") == "1.0"
    result, target = clients.uv_install(server.index_url, "dated")
    assert installed_version(target, "dated") == "2.0"


def test_simple_index_lists_every_project_havarti_can_serve_without_upstream(server, upstream,
                                                                              clients):
    wheel = dists.wheel("listed-cached", "1.0")
    upstream.publish("listed-cached", wheel, "1.0")
    upstream.publish("listed-page-only", dists.wheel("listed-page-only", "1.0"), "1.0")
    upstream.publish("listed-gone", dists.wheel("listed-gone", "1.0"), "1.0")
    upstream.publish("listed-never", dists.wheel("listed-never", "1.0"), "1.0")
    private = dists.wheel("listed-private", "1.0").write(clients.work / "listed")
    assert clients.twine_upload(server.url, PASSCODE, private).returncode == 0
    assert httpx.get(file_url(server, "listed-cached", wheel.filename)).status_code == 200
    # Pages seen, none of their files fetched: the stored page is what Havarti holds.
    page_files(server, "listed-page-only")
    page_files(server, "listed-gone")
    with upstream.lock:
        del upstream.projects["listed-gone"]
    assert get_page(server, "listed-gone").status_code == 404  # upstream's 404 forgets the page

    held = {"listed-cached", "listed-page-only", "listed-private"}
    response = httpx.get(server.index_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    names = {p["name"] for p in response.json()["projects"]}
    assert held <= names
    assert not {"listed-never", "listed-gone"} & names
    html = httpx.get(server.index_url).text
    assert all(f'href="{name}/"' in html for name in held)
    assert 'href="listed-never/"' not in html and 'href="listed-gone/"' not in html

    # Everything listed is served with upstream gone.
    upstream.down()
    for name in held:
        assert get_page(server, name).status_code == 200, name


def test_json_api_for_upstream_and_private_projects(server, upstream, clients):
    one, two = dists.wheel("json-up", "1.0"), dists.wheel("json-up", "2.0")
    upstream.publish("json-up", one, "1.0")
    upstream.publish("json-up", two, "2.0")

    document = httpx.get(f"{server.url}/pypi/json-up/json").json()
    assert document["info"]["version"] == "2.0"
    urls = {f["filename"]: f["url"] for files in document["releases"].values() for f in files}
    assert urls == {one.filename: file_url(server, "json-up", one.filename),
                    two.filename: file_url(server, "json-up", two.filename)}
    assert httpx.get(urls[one.filename]).content == one.data
    version = httpx.get(f"{server.url}/pypi/json-up/1.0/json").json()
    assert [f["url"] for f in version["urls"]] == [file_url(server, "json-up", one.filename)]
    assert httpx.get(f"{server.url}/pypi/json-absent/json").status_code == 404

    private = dists.wheel("json-private", "0.3")
    assert clients.twine_upload(server.url, PASSCODE,
                                private.write(clients.work / "json")).returncode == 0
    document = httpx.get(f"{server.url}/pypi/json-private/json").json()
    assert document["info"]["version"] == "0.3"
    assert [f["url"] for f in document["urls"]] == [file_url(server, "json-private", private.filename)]
    assert document["urls"][0]["digests"]["sha256"] == private.sha256
    assert httpx.get(f"{server.url}/pypi/json-private/0.3/json").json()["info"]["version"] == "0.3"
    missing = httpx.get(f"{server.url}/pypi/json-private/9.9/json")
    assert missing.status_code == 404 and "9.9" in missing.text


def test_html_only_upstream(server, upstream, clients):
    upstream.html_only = True
    wheel = dists.wheel("html-only", "1.0", requires_python=">=3.8")
    upstream.publish("html-only", wheel, "1.0", requires_python=">=3.8")

    entry = page_files(server, "html-only")[wheel.filename]
    assert entry["hashes"] == {"sha256": wheel.sha256}
    assert entry["requires-python"] == ">=3.8"
    assert entry["core-metadata"] == {"sha256": hashlib.sha256(wheel.metadata).hexdigest()}
    result, target = clients.pip_install(server.index_url, "html-only")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "html_only") == "1.0"
    assert httpx.get(file_url(server, "html-only", wheel.filename)).content == wheel.data


def test_project_with_5000_files(server, upstream):
    count = 5000
    when = datetime.now(UTC) - timedelta(days=30)
    published = {}
    for i in range(count):
        # Page entries, not installable wheels: building 5,000 zips would cost more than the test.
        dist = dists.Dist(f"huge_proj-1.{i}-py3-none-any.whl", f"bytes of {i}".encode(), b"")
        upstream.publish("huge-proj", dist, f"1.{i}", upload_time=when)
        published[dist.filename] = dist.sha256

    timings = []
    for _ in range(3):
        started = time.monotonic()
        response = get_page(server, "huge-proj")
        timings.append(time.monotonic() - started)
        assert response.status_code == 200
    files = response.json()["files"]
    assert len(files) == count
    assert {f["filename"]: f["hashes"]["sha256"] for f in files} == published
    html = httpx.get(f"{server.index_url}huge-proj/").text
    assert html.count("<a ") == count
    assert f"#sha256={published['huge_proj-1.4999-py3-none-any.whl']}" in html
    print(f"\n5,000-file page through Havarti: first (fetch, parse, build) {timings[0] * 1000:.0f} ms, "
          f"then (revalidate with a 304) {timings[1] * 1000:.0f} ms, {timings[2] * 1000:.0f} ms")
