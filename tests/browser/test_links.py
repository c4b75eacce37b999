"""Every link on every UI page answers: a crawler in a real browser.

The browser resolves each link as a user's click would (relative links against
the page they are on), so a link that only looks right in the template is caught.
"""

from __future__ import annotations

from urllib.parse import urldefrag, urlsplit

import httpx

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.proxy import file_url
from tests.support.uploads import post_upload

README = "# Crawled\n\nA [link elsewhere](https://example.com/docs) and [one here](/stats/).\n"
#: Pages that answer 4xx/5xx on purpose, with why: none today.
INTENDED: dict[str, int] = {}
#: Enough to bound a crawl that went wrong (a link that makes new links forever).
MAX_URLS = 400
#: Elements whose URL the browser would fetch or a user could follow.
LINKS = """els => els.map(e => e.href || e.src).filter(Boolean)"""


def is_ui_page(url: str) -> bool:
    """Pages of the web UI, whose links are crawled in turn (not the simple API or files)."""
    path = urlsplit(url).path
    return path == "/" or path.startswith(("/projects/", "/stats/"))


def test_no_link_on_any_ui_page_is_broken(server, upstream, browser):
    # What the UI shows: private files (yanked, sdist, a README with links), a cached
    # upstream project, and two pages of projects.
    private = [dists.wheel("crawled", "1.0", description=README,
                           description_content_type="text/markdown"),
               dists.wheel("crawled", "2.0"), dists.sdist("crawled", "2.0")]
    private += [dists.wheel(f"crawled-{n:02d}", "1.0") for n in range(50)]
    for dist in private:
        assert post_upload(server.url, dist, PASSCODE).status_code == 200
    yanked = httpx.post(f"{server.url}/api/projects/crawled/files/{private[0].filename}/yank",
                        json={"reason": "old"}, auth=("havarti", PASSCODE))
    assert yanked.status_code == 200, yanked.text
    cached = dists.wheel("crawled-upstream", "1.0")
    upstream.publish("crawled-upstream", cached, "1.0")
    assert httpx.get(file_url(server, "crawled-upstream", cached.filename)).status_code == 200

    context = browser.new_context()
    page = context.new_page()
    origin = urlsplit(server.url).netloc
    queue = [(server.url + "/", "start")]
    seen = {url for url, _ in queue}
    broken: list[str] = []
    ui_pages = 0
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        while queue:
            url, found_on = queue.pop(0)
            if is_ui_page(url):
                answer = page.goto(url, wait_until="domcontentloaded")
                assert answer is not None
                status, content_type = answer.status, answer.headers.get("content-type", "")
            else:  # files, the simple API, /metrics: no page to look at
                response = client.get(url)
                status, content_type = response.status_code, ""
            if status >= 400 and INTENDED.get(url) != status:
                broken.append(f"{url} -> {status} (linked from {found_on})")
                continue
            if not content_type.startswith("text/html"):
                continue
            ui_pages += 1
            hrefs = page.eval_on_selector_all("a[href], link[href], script[src], img[src]", LINKS)
            for href in hrefs:
                target = urldefrag(href).url
                if urlsplit(target).netloc == origin and target not in seen:
                    seen.add(target)
                    queue.append((target, url))
            assert len(seen) < MAX_URLS, "the crawl does not end"
    context.close()
    assert broken == []
    # It went everywhere: file pages, both kinds of project, the second page of results.
    paths = {urlsplit(url).path for url in seen}
    assert f"/projects/crawled/files/{private[0].filename}/" in paths
    assert f"/files/crawled/{private[0].filename}" in paths
    assert f"/files/crawled-upstream/{cached.filename}" in paths
    assert any("page=2" in url for url in seen)
    assert ui_pages > 50
