"""The simple API and file serving, over real HTTP, for projects Havarti holds.

Pages are read the way installers read them: raw bytes for what the PEPs
spell out, and pypi-simple (a real client's parser) for what clients conclude.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pypi_simple import ProjectPage
from sqlalchemy import update

from havarti.db import Database
from havarti.db.models import File, Project
from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.server import HavartiServer
from tests.support.uploads import post_upload

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON}, {HTML}; q=0.1, text/html; q=0.01"


@dataclass
class Held:
    server: HavartiServer
    old: dists.Dist
    new: dists.Dist
    sdist: dists.Dist
    uploaded_at: datetime

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.server.url + path, headers=headers)


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Held]:
    """One server holding project "pep-demo" (two wheels, one sdist) for the whole module."""
    upstream = FakeIndex().start()
    server = HavartiServer(tmp_path_factory.mktemp("simple") / "data", {
        "PASSCODE": PASSCODE, "FALLBACK": upstream.url, "UPSTREAM_TIMEOUT": "3"})
    server.start()
    old = dists.wheel("Pep_Demo", "1.0", requires_python=">=3.8,<4")
    new = dists.wheel("Pep_Demo", "2.0", payload_size=3000)
    sdist = dists.sdist("Pep_Demo", "2.0")
    uploaded_at = datetime.now(UTC)
    for dist in (old, new, sdist):
        response = post_upload(server.url, dist, PASSCODE)
        assert response.status_code == 200, response.text
    try:
        yield Held(server, old, new, sdist, uploaded_at)
    finally:
        server.stop()
        upstream.down()


def yank(server: HavartiServer, filename: str, reason: str | None) -> None:
    """What the management UI will do: mark the file yanked and bump the project's serial."""
    db = Database(f"sqlite:///{server.data_dir / 'havarti.db'}")
    try:
        with db.session() as session:
            session.execute(update(File).where(File.filename == filename)
                            .values(yanked=True, yanked_reason=reason))
            session.execute(update(Project).where(Project.name == "pep-demo")
                            .values(serial=Project.serial + 1))
    finally:
        db.dispose()


# Content negotiation (PEP 691)


@pytest.mark.parametrize("accept,expected", [
    (None, "text/html"),
    ("*/*", "text/html"),
    ("text/html", "text/html"),
    (JSON, JSON),
    (HTML, HTML),
    (PIP_ACCEPT, JSON),
    (f"{JSON};q=0.2, {HTML};q=0.9", HTML),
    (f"{HTML};q=0.5, {JSON};q=0.6, text/html;q=0.1", JSON),
    (f"text/html;q=1, {JSON};q=0", "text/html"),
    ("application/vnd.pypi.simple.latest+json", JSON),
    ("application/vnd.pypi.simple.latest+html", HTML),
])
@pytest.mark.parametrize("path", ["/simple/", "/simple/pep-demo/"])
def test_accept_header_chooses_the_format(held, path, accept, expected):
    response = held.get(path, **({"Accept": accept} if accept else {}))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == expected
    assert "Accept" in {v.strip() for v in response.headers["Vary"].split(",")}
    if expected == JSON:
        assert response.json()["meta"]["api-version"] == "1.1"
    else:
        assert '<meta name="pypi:repository-version" content="1.1">' in response.text


@pytest.mark.parametrize("fmt,expected", [("json", JSON), ("html", HTML), (JSON, JSON),
                                          (HTML, HTML), ("text/html", "text/html")])
def test_format_query_wins_over_accept(held, fmt, expected):
    response = httpx.get(f"{held.server.url}/simple/pep-demo/", params={"format": fmt},
                         headers={"Accept": "text/html" if expected == JSON else JSON})
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == expected
    assert "Accept" in {v.strip() for v in response.headers["Vary"].split(",")}


@pytest.mark.parametrize("accept,query", [
    ("application/xml", ""), (f"{JSON};q=0, text/html;q=0", ""), ("text/plain", ""),
    (None, "?format=yaml"), ("application/vnd.pypi.simple.v2+json", ""),
])
@pytest.mark.parametrize("path", ["/simple/", "/simple/pep-demo/"])
def test_unacceptable_format_is_406(held, path, accept, query):
    response = held.get(path + query, **({"Accept": accept} if accept else {}))
    assert response.status_code == 406
    line = response.text.strip()
    assert "\n" not in line and JSON in line


def test_html_and_json_describe_the_same_files(held):
    html = held.get("/simple/pep-demo/")
    json = held.get("/simple/pep-demo/", Accept=JSON)
    base = f"{held.server.url}/simple/pep-demo/"
    from_html = ProjectPage.from_html("pep-demo", html.text, base_url=base)
    from_json = ProjectPage.from_json_data(json.json(), base_url=base)
    assert from_html.repository_version == from_json.repository_version == "1.1"
    for page in (from_html, from_json):
        assert sorted(p.filename for p in page.packages) == sorted(
            d.filename for d in (held.old, held.new, held.sdist))
        for package in page.packages:
            # Every URL points at Havarti and serves the very bytes the hash names.
            assert package.url.startswith(held.server.url + "/files/pep-demo/")
            data = httpx.get(package.url).content
            assert package.digests["sha256"] == hashlib.sha256(data).hexdigest()


# Redirects and not found


@pytest.mark.parametrize("path,location", [
    ("/simple/Pep_Demo/", "/simple/pep-demo/"),
    ("/simple/PEP.demo/", "/simple/pep-demo/"),
    ("/simple/pep-demo", "/simple/pep-demo/"),
    ("/simple/Pep__Demo", "/simple/pep-demo/"),
    ("/simple/Pep_Demo/?format=json", "/simple/pep-demo/?format=json"),
])
def test_non_normalised_names_redirect_permanently(held, path, location):
    response = held.get(path)
    assert response.status_code == 301
    assert response.headers["Location"].removeprefix(held.server.url) == location
    followed = httpx.get(held.server.url + path, follow_redirects=True)
    assert followed.status_code == 200 and "pep_demo-2.0" in followed.text


def test_unknown_project_is_404(held):
    for accept in (None, JSON):
        response = held.get("/simple/no-such-project/", **({"Accept": accept} if accept else {}))
        assert response.status_code == 404
        assert "no-such-project" in response.text and "\n" not in response.text.strip()


def test_index_lists_projects(held):
    assert held.get("/simple/", Accept=JSON).json()["projects"] == [{"name": "pep-demo"}]
    assert '<a href="pep-demo/">pep-demo</a>' in held.get("/simple/").text


# What each file carries


def test_hashes_and_escaped_requires_python(held):
    html = held.get("/simple/pep-demo/").text
    assert f'{held.old.filename}#sha256={held.old.sha256}"' in html
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in html
    assert ">=3.8" not in html
    files = {f["filename"]: f for f in held.get("/simple/pep-demo/", Accept=JSON).json()["files"]}
    assert files[held.old.filename]["hashes"] == {"sha256": held.old.sha256}
    assert files[held.old.filename]["requires-python"] == ">=3.8,<4"
    assert "requires-python" not in files[held.new.filename]


def test_core_metadata_advertised_and_served(held):
    html = held.get("/simple/pep-demo/").text
    meta_sha = hashlib.sha256(held.new.metadata).hexdigest()
    assert f'data-core-metadata="sha256={meta_sha}"' in html
    assert f'data-dist-info-metadata="sha256={meta_sha}"' in html
    files = {f["filename"]: f for f in held.get("/simple/pep-demo/", Accept=JSON).json()["files"]}
    assert files[held.new.filename]["core-metadata"] == {"sha256": meta_sha}
    served = held.get(f"/files/pep-demo/{held.new.filename}.metadata")
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == meta_sha
    assert served.content == held.new.metadata
    # An sdist's PKG-INFO may omit dynamic dependencies: not offered, as on PyPI.
    assert "core-metadata" not in files[held.sdist.filename]
    assert held.get(f"/files/pep-demo/{held.sdist.filename}.metadata").status_code == 404


def test_pep_700_versions_size_upload_time(held):
    page = held.get("/simple/pep-demo/", Accept=JSON).json()
    assert page["versions"] == ["1.0", "2.0"]
    for entry in page["files"]:
        dist = {d.filename: d for d in (held.old, held.new, held.sdist)}[entry["filename"]]
        assert entry["size"] == len(dist.data)
        assert entry["upload-time"].endswith("Z")
        when = datetime.fromisoformat(entry["upload-time"].replace("Z", "+00:00"))
        assert abs(when - held.uploaded_at) < timedelta(minutes=5)


def test_yanked_with_and_without_reason(held):
    yank(held.server, held.old.filename, 'too old & "broken"')
    yank(held.server, held.sdist.filename, None)
    html = held.get("/simple/pep-demo/").text
    assert 'data-yanked="too old &amp; &quot;broken&quot;"' in html
    files = {f["filename"]: f for f in held.get("/simple/pep-demo/", Accept=JSON).json()["files"]}
    assert files[held.old.filename]["yanked"] == 'too old & "broken"'
    # PEP 691: a reason is a non-empty string; without one, yanked is true.
    assert files[held.sdist.filename]["yanked"] is True
    assert files[held.new.filename]["yanked"] is False
    parsed = ProjectPage.from_html("pep-demo", html)
    yanked = {p.filename: p.yanked_reason for p in parsed.packages if p.is_yanked}
    assert yanked == {held.old.filename: 'too old & "broken"', held.sdist.filename: ""}


# File responses


@pytest.mark.parametrize("which,content_type", [("new", "application/zip"),
                                                ("sdist", "application/gzip")])
def test_file_headers(held, which, content_type):
    dist = getattr(held, which)
    response = held.get(f"/files/pep-demo/{dist.filename}")
    assert response.status_code == 200
    assert response.content == dist.data
    assert response.headers["Content-Type"] == content_type
    assert "Content-Encoding" not in response.headers
    assert int(response.headers["Content-Length"]) == len(dist.data)
    assert response.headers["ETag"].strip('"') == dist.sha256
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Accept-Ranges"] == "bytes"


def test_range_requests(held):
    url = f"/files/pep-demo/{held.new.filename}"
    data, size = held.new.data, len(held.new.data)
    response = held.get(url, Range="bytes=100-199")
    assert response.status_code == 206
    assert response.content == data[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{size}"
    assert response.headers["Content-Length"] == "100"
    response = held.get(url, Range="bytes=-10")
    assert response.status_code == 206 and response.content == data[-10:]
    response = held.get(url, Range=f"bytes={size - 5}-")
    assert response.status_code == 206 and response.content == data[-5:]
    response = held.get(url, Range=f"bytes={size + 10}-{size + 20}")
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"


def test_if_none_match_is_304(held):
    url = f"/files/pep-demo/{held.new.filename}"
    etag = held.get(url).headers["ETag"]
    response = held.get(url, **{"If-None-Match": etag})
    assert response.status_code == 304 and response.content == b""
    assert held.get(url, **{"If-None-Match": '"something-else"'}).status_code == 200


def test_project_page_revalidates_with_etag(held):
    first = held.get("/simple/pep-demo/", Accept=JSON)
    etag = first.headers["ETag"]
    again = held.get("/simple/pep-demo/", Accept=JSON, **{"If-None-Match": etag})
    assert again.status_code == 304
    # The HTML representation has its own validator.
    html = held.get("/simple/pep-demo/", Accept="text/html", **{"If-None-Match": etag})
    assert html.status_code == 200 and html.headers["ETag"] != etag


def test_unknown_file_is_404(held):
    assert held.get("/files/pep-demo/pep_demo-9.9-py3-none-any.whl").status_code == 404
    assert held.get("/files/pep-demo/pep_demo-9.9-py3-none-any.whl.metadata").status_code == 404
    # A file is only served under its own project.
    assert held.get(f"/files/other-project/{held.new.filename}").status_code == 404
