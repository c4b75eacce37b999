"""The web UI's pages, rendered by the real app on a real (SQLite) database."""

from __future__ import annotations

import re
from html import unescape

import pytest

from havarti.db.projects import Projects
from havarti.domain import browse
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.webapp import WebApp, make_webapp


@pytest.fixture
def web(tmp_path, upstream: FakeIndex) -> WebApp:
    return make_webapp(tmp_path / "data", upstream.url)


def text(response) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def pre_texts(response) -> list[str]:
    """What each <pre> shows (and its copy button copies): its text without the markup."""
    return [unescape(re.sub(r"<[^>]+>", "", block)) for block in
            re.findall(r"<pre[^>]*>(.*?)</pre>", response.get_data(as_text=True), re.S)]


def test_home_gives_settings_for_the_url_it_was_reached_at(web):
    response = web.client.get("/", base_url="http://pkgs.example.test:8123")
    page = response.get_data(as_text=True)
    blocks = pre_texts(response)
    assert "pip install -i http://pkgs.example.test:8123/simple/ requests" in blocks
    assert ("[global]\nindex-url = http://pkgs.example.test:8123/simple/\n"
            "trusted-host = pkgs.example.test") in blocks
    assert any('url = "http://pkgs.example.test:8123/simple/"' in b for b in blocks)
    assert "poetry source add --priority=primary havarti http://pkgs.example.test:8123/simple/" in blocks
    assert ('twine upload --repository-url http://pkgs.example.test:8123/ -u havarti -p '
            '"$PASSCODE" dist/*\nuv publish --publish-url http://pkgs.example.test:8123/ '
            '-u havarti -p "$PASSCODE" dist/*') in blocks
    assert any("repository:http://pkgs.example.test:8123/" in b for b in blocks)
    # One search box on the home page: its own (the header's is left out here).
    assert page.count('role="search"') == 1 and 'id="home-q"' in page


def test_home_uses_public_url_when_set(tmp_path, upstream):
    web = make_webapp(tmp_path / "data", upstream.url, PUBLIC_URL="https://pypi.corp.example/")
    response = web.client.get("/")
    assert "pip install -i https://pypi.corp.example/simple/ requests" in pre_texts(response)
    assert "trusted-host" not in response.get_data(as_text=True)


def test_search_normalises_and_puts_prefix_matches_first(web):
    for name in ("zz-cheese-tools", "cheese", "cheese-press", "brie"):
        web.upload(dists.wheel(name, "1.0"))
    listed = re.findall(r'<th scope="row"><a href="/projects/([^/]+)/"',
                        web.client.get("/projects/?q=Cheese").get_data(as_text=True))
    assert listed == ["cheese", "cheese-press", "zz-cheese-tools"]
    # Separators normalise: "Cheese_Press" and "cheese.press" are the same project.
    assert "cheese-press" in web.client.get("/projects/?q=Cheese_Press").get_data(as_text=True)
    assert "brie" not in web.client.get("/projects/?q=chee").get_data(as_text=True)


def test_search_filters_private_and_cached(web, upstream):
    web.upload(dists.wheel("mine", "1.0"))
    upstream.publish("theirs", dists.wheel("theirs", "2.0"), "2.0")
    web.download("/files/theirs/theirs-2.0-py3-none-any.whl")
    both = text(web.client.get("/projects/"))
    assert "mine" in both and "theirs" in both
    private = text(web.client.get("/projects/?kind=private"))
    assert "mine" in private and "theirs" not in private
    cached = text(web.client.get("/projects/?kind=cached"))
    assert "theirs" in cached and "mine" not in cached


def test_search_pages_through_results(web):
    db = web.db
    for i in range(5):
        web.upload(dists.wheel(f"gouda{i}", "1.0"))
    first = browse.search_projects(Projects(db), "gouda", per_page=2)
    last = browse.search_projects(Projects(db), "gouda", page=3, per_page=2)
    assert (first.total, first.pages) == (5, 3)
    assert [r.name for r in first.rows] == ["gouda0", "gouda1"]
    assert [r.name for r in last.rows] == ["gouda4"]


@pytest.mark.parametrize("query, reason", [
    ("page=abc", "page must be a whole number"),
    ("page=0", "page must be a whole number"),
    ("kind=everything", "kind must be one of"),
    ("q=" + "x" * 201, "longer than 200"),
])
def test_search_refuses_bad_parameters(web, query, reason):
    response = web.client.get(f"/projects/?{query}")
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert len(response.get_data(as_text=True).strip().splitlines()) == 1


def test_project_page_lists_versions_newest_first_with_file_details(web):
    web.upload(dists.wheel("edam", "1.9", requires_python=">=3.9"))
    web.upload(dists.wheel("edam", "1.10", requires_python=">=3.10"))
    newest = dists.sdist("edam", "1.10")
    web.upload(newest)
    response = web.client.get("/projects/edam/")
    page = response.get_data(as_text=True)
    versions = re.findall(r'<tbody class="release" id="v([^"]+)">', page)
    assert versions == ["1.10", "1.9"]
    # The table shows a short hash, linked to the file's page, and copies the whole one.
    assert f'<code>{newest.sha256[:12]}</code>' in page
    assert f'data-copy-text="{newest.sha256}"' in page
    assert "&gt;=3.10" in page
    assert "pip install -i http://localhost/simple/ edam==1.10" in pre_texts(response)
    assert 'href="../../files/edam/edam-1.10.tar.gz"' in page


def test_project_page_of_upstream_project_shows_origin(web, upstream):
    upstream.publish("feta", dists.wheel("feta", "1.0"), "1.0")
    upstream.publish("feta", dists.wheel("feta", "2.0"), "2.0")
    web.download("/files/feta/feta-1.0-py3-none-any.whl")
    rows = dict(re.findall(r'<tr id="([^"]+)".*?<td data-label="Origin">(cached here|upstream|private)</td>',
                           web.client.get("/projects/feta/").get_data(as_text=True), re.S))
    assert rows == {"feta-2.0-py3-none-any.whl": "upstream",
                    "feta-1.0-py3-none-any.whl": "cached here"}


def test_project_page_redirects_to_normalised_name(web):
    web.upload(dists.wheel("Swiss_Cheese", "1.0"))
    response = web.client.get("/projects/Swiss_Cheese/")
    assert response.status_code == 301
    assert response.headers["Location"].endswith("/projects/swiss-cheese/")


def test_unknown_project_is_a_404_page(web):
    response = web.client.get("/projects/no-such-cheese/")
    assert response.status_code == 404
    assert "no project named 'no-such-cheese'" in text(response)


def test_description_is_rendered_and_sanitised(web):
    readme = ("# Stilton\n\n<script>window.pwned = 1</script>\n\n"
              "<img src=x onerror=\"alert(1)\"> [click](javascript:alert(2)) **blue**\n")
    web.upload(dists.wheel("stilton", "1.0", description=readme,
                           description_content_type="text/markdown"))
    response = web.client.get("/projects/stilton/")
    page = response.get_data(as_text=True)
    readme_html = page[page.index('<div class="readme">'):page.index("</section>", page.index('<div class="readme">'))]
    assert "<strong>blue</strong>" in readme_html
    assert "<script" not in readme_html and "onerror" not in readme_html
    assert "javascript:" not in readme_html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_rst_description_with_raw_html_falls_back_to_text(web):
    readme = "Title\n=====\n\n.. raw:: html\n\n   <script>alert(1)</script>\n"
    web.upload(dists.wheel("brie", "1.0", description=readme, description_content_type="text/x-rst"))
    page = web.client.get("/projects/brie/").get_data(as_text=True)
    assert "&lt;script&gt;" in page and "<script>alert" not in page


def _many_versions(web: WebApp, versions: int) -> list[str]:
    """A private project ``wheel-of-cheese`` with one file per version, rows written directly."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from havarti.db.models import ORIGIN_UPLOADED, File, Project

    now = datetime.now(UTC)
    names = [f"{n // 100}.{n % 100}" for n in range(versions)]
    with web.db.engine.begin() as connection:
        project_id = connection.execute(insert(Project).values(
            name="wheel-of-cheese", display_name="wheel-of-cheese", private=True, serial=1,
            created=now)).inserted_primary_key[0]  # type: ignore[index]  # an insert has one
        connection.execute(insert(File), [{
            "project_id": project_id, "filename": f"wheel_of_cheese-{v}-py3-none-any.whl",
            "version": v, "packagetype": "bdist_wheel", "size": 1000 + n,
            "sha256": f"{n:064x}", "yanked": False, "upload_time": now - timedelta(minutes=n),
            "origin": ORIGIN_UPLOADED, "storage_key": f"k/{n}", "stored": True}
            for n, v in enumerate(names)])
    return names


def test_project_page_of_a_huge_project_shows_fifty_versions_a_page(web):
    import time

    names = _many_versions(web, 5_000)
    newest_first = names[::-1]
    first = web.client.get("/projects/wheel-of-cheese/")
    assert first.status_code == 200
    started = time.perf_counter()
    response = web.client.get("/projects/wheel-of-cheese/")
    elapsed = time.perf_counter() - started
    page = response.get_data(as_text=True)
    shown = re.findall(r'<tbody class="release" id="v([^"]+)">', page)
    assert shown == newest_first[:browse.VERSIONS_PER_PAGE] and len(shown) == 50
    assert len(response.get_data()) < 100_000, "a 5,000-version page must stay small"
    assert elapsed < 1.0, f"served in {elapsed:.2f} s"
    # The install line and the counts are about the whole project, not the page.
    assert "wheel-of-cheese==49.99" in page
    assert "5,000 versions, 5,000 files" in page
    assert "Versions 1–50 of 5,000" in page
    assert 'rel="next" href="/projects/wheel-of-cheese/?page=2"' in page
    assert 'rel="last" href="/projects/wheel-of-cheese/?page=100"' in page

    second = web.client.get("/projects/wheel-of-cheese/?page=2").get_data(as_text=True)
    assert re.findall(r'<tbody class="release" id="v([^"]+)">', second) == newest_first[50:100]
    assert 'rel="prev" href="/projects/wheel-of-cheese/?page=1"' in second
    last = web.client.get("/projects/wheel-of-cheese/?page=100").get_data(as_text=True)
    assert re.findall(r'<tbody class="release" id="v([^"]+)">', last)[-1] == "0.0"
    assert 'rel="next"' not in last

    # ?version= opens the page holding that version (where yanking a file lands).
    jumped = web.client.get("/projects/wheel-of-cheese/?version=0.5").get_data(as_text=True)
    assert "page 100 of 100" in jumped and 'id="v0.5"' in jumped

    beyond = web.client.get("/projects/wheel-of-cheese/?page=101")
    assert beyond.status_code == 404 and "has 100 pages of versions" in text(beyond)
    assert web.client.get("/projects/wheel-of-cheese/?version=9.9.9").status_code == 404
    for bad in ("0", "x", "²", "4611686018427387904", "9" * 5000):
        assert web.client.get(f"/projects/wheel-of-cheese/?page={bad}").status_code == 400
    for bad in ("1" * 5000, "1.0 or 1", "%00"):
        assert web.client.get(f"/projects/wheel-of-cheese/?version={bad}").status_code == 400


def test_project_page_with_few_versions_has_no_pager(web):
    _many_versions(web, 50)
    page = web.client.get("/projects/wheel-of-cheese/").get_data(as_text=True)
    assert len(re.findall(r'<tbody class="release"', page)) == 50
    assert 'aria-label="Pages of versions"' not in page and "Versions 1–50" not in page


def test_a_500_is_the_site_layout_for_a_browser_and_one_plain_line_for_tools(web):
    def broken() -> str:
        raise RuntimeError("a bug")

    web.app.add_url_rule("/broken-for-test", "broken", broken)
    web.app.config["PROPAGATE_EXCEPTIONS"] = False
    page = web.client.get("/broken-for-test", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert "<h1>Something went wrong</h1>" in page.get_data(as_text=True)
    assert 'aria-label="Main"' in page.get_data(as_text=True)
    for accept in ("*/*", "text/plain", "text/plain, text/html"):
        plain = web.client.get("/broken-for-test", headers={"Accept": accept})
        assert plain.status_code == 500 and plain.mimetype == "text/plain", accept
        line = plain.get_data(as_text=True)
        assert len(line.splitlines()) == 1 and plain.status == f"500 {line.strip()}"
    assert "a bug" not in page.get_data(as_text=True)  # no internals shown
