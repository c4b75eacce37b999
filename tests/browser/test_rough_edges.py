"""The UI's rough edges, fixed and checked in a real browser at a desktop and a phone width.

Each step saves a screenshot (the ``screens`` fixture, under the test's temporary
folder) for a person to look at; the assertions check what that person would.
"""

from __future__ import annotations

import time

import httpx

from tests.browser.conftest import watch
from tests.support import dists
from tests.support.clients import installed_version

#: Every word in the element that the browser laid out over more than one line.
BROKEN_WORDS = """el => {
  const broken = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.textContent.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""
#: Table cells whose text the browser cut short (clipped, with an ellipsis).
CUT_CELLS = """table => [...table.querySelectorAll("tbody td")]
  .filter(td => td.scrollWidth > td.clientWidth + 1).map(td => td.innerText)"""
#: What a phone shows before each field's value (the table's header row is hidden there).
FIELD_LABELS = """row => [...row.querySelectorAll("td")].map(td => {
  const before = getComputedStyle(td, "::before");
  return before.display === "none" ? "" : before.content.replace(/attr\\(data-label\\)/, td.dataset.label);
})"""
LONG_NAME = "extra-mature-gouda-slicer-and-grater"


def publish_long_named_project(upstream) -> tuple[dists.Dist, dists.Dist]:
    wheel = dists.wheel(LONG_NAME, "142.9", requires_python=">=3.10")
    sdist = dists.sdist(LONG_NAME, "142.9", requires_python=">=3.10")
    upstream.publish(LONG_NAME, wheel, "142.9")
    upstream.publish(LONG_NAME, sdist, "142.9")
    return wheel, sdist


def test_project_table_at_1280_cuts_nothing_and_copies_the_whole_hash(
        server, upstream, clients, browser, screens, console_errors):
    wheel, sdist = publish_long_named_project(upstream)
    result, target = clients.pip_install(server.index_url, LONG_NAME)
    assert result.returncode == 0, result.stderr
    assert installed_version(target, LONG_NAME.replace("-", "_")) == "142.9"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = watch(context.new_page(), console_errors)
    page.goto(f"{server.url}/projects/{LONG_NAME}/")
    table = page.locator("table.files")
    # The file was cached by the install; give the page a moment to say so.
    deadline = time.monotonic() + 10
    while "cached here" not in table.inner_text() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    cached = page.locator("tr", has_text=wheel.filename)
    assert "cached here" in cached.inner_text()
    assert page.evaluate(CUT_CELLS, table.element_handle()) == []
    # The widest size and origin the table can show fit as well (a 142.9 MB wheel).
    page.evaluate("""() => { const row = document.querySelector("tbody tr:not(.version)");
      row.querySelector('[data-label="Size"]').textContent = "142.9 MB";
      row.querySelector('[data-label="Origin"]').textContent = "cached here"; }""")
    assert page.evaluate(CUT_CELLS, table.element_handle()) == []
    screens(page, "project-1280")

    # The hash column: a short hash, linked to the file's page; Copy copies the whole hash.
    hash_cell = cached.locator('td[data-label="SHA-256"]')
    assert hash_cell.locator("code").inner_text() == wheel.sha256[:12]
    hash_cell.get_by_role("button", name=f"Copy the SHA-256 of {wheel.filename}").click()
    assert page.evaluate("navigator.clipboard.readText()") == wheel.sha256
    hash_cell.get_by_role("link").click()
    assert page.url == f"{server.url}/projects/{LONG_NAME}/files/{wheel.filename}/"
    assert wheel.sha256 in page.locator("dl.details").inner_text()
    screens(page, "file-page")
    assert console_errors == []
    context.close()


def test_phone_labels_every_file_field_and_wraps_commands_between_words(
        server, upstream, browser, screens, console_errors):
    wheel, sdist = publish_long_named_project(upstream)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = watch(context.new_page(), console_errors)
    page.goto(f"{server.url}/projects/{LONG_NAME}/")
    assert not page.locator("table.files thead").is_visible()
    for dist in (wheel, sdist):
        row = page.locator("tr", has_text=dist.filename).element_handle()
        assert page.evaluate(FIELD_LABELS, row) == [
            '"Size: "', '"Uploaded: "', '"Requires Python: "', '"Origin: "', '"SHA-256: "'], dist
    install = page.locator("#install-line")
    assert install.inner_text().strip() == f"pip install -i {server.index_url} {LONG_NAME}==142.9"
    assert page.evaluate(BROKEN_WORDS, install.element_handle()) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screens(page, "phone-project")

    page.goto(server.url + "/")
    # One search box on the home page, whatever the width.
    assert page.locator('input[type="search"]').count() == 1
    assert page.get_by_label("Find a project").is_visible()
    for block in page.locator(".copy pre").element_handles():
        assert page.evaluate(BROKEN_WORDS, block) == [], block.inner_text()
    screens(page, "phone-home")
    assert console_errors == []
    context.close()


def test_twine_line_never_breaks_inside_a_word_at_any_width(server, browser, screens):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/")
    twine = page.locator("#twine-line")
    assert "-u havarti" in twine.inner_text()
    for width in (1280, 1100, 1000, 900, 800, 700, 600, 500, 430, 390, 360, 320):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(BROKEN_WORDS, twine.element_handle()) == [], width
        if width in (1000, 320):
            screens(page, f"home-{width}")
    context.close()


def test_error_page_in_the_site_layout(server, browser, screens, console_errors):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watch(context.new_page(), console_errors)
    response = page.goto(server.url + "/projects/brie/files/brie-9.0.tar.gz/")
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    assert page.get_by_role("alert").inner_text() == "no project named 'brie'"
    assert page.get_by_role("navigation", name="Main").is_visible()
    assert page.get_by_role("link", name="Search projects").is_visible()
    screens(page, "error-404")
    # A tool asking for the same page gets one plain line.
    plain = httpx.get(server.url + "/projects/brie/files/brie-9.0.tar.gz/")
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert plain.text.strip() == page.get_by_role("alert").inner_text().strip()
    # The browser's own error for the 404 is the only console line.
    assert all("404" in e for e in console_errors)
    context.close()


def test_stats_count_background_downloads_as_fetched_from_upstream(
        start_server, upstream, clients, browser, screens):
    # FILE_MISS=redirect: the installer gets upstream's URL and Havarti downloads in the
    # background, as a downloader worker or `havarti prefetch` would: no request is served
    # from storage, yet one file is fetched from upstream.
    server = start_server({"FALLBACK": upstream.url, "FILE_MISS": "redirect"})
    upstream.publish("brie", dists.wheel("brie", "1.0"), "1.0")
    result, _ = clients.pip_install(server.index_url, "brie")
    assert result.returncode == 0, result.stderr
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/stats/")
    deadline = time.monotonic() + 15
    while page.locator("#total-upstream").inner_text() != "1" and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    assert page.locator("#total-upstream").inner_text() == "1"
    assert page.locator("#total-hits").inner_text() == "0"
    assert page.get_by_text("Fetched from upstream", exact=True).is_visible()
    # The request itself counts once, as a request not served from storage.
    assert page.locator("table.top tbody tr").all_inner_texts() == ["brie\t1\t0\t0 bytes"]
    screens(page, "stats-fetched")
    page.goto(server.url + "/")
    assert page.locator(".figures").get_by_text("Fetched from upstream (30 days)").is_visible()
    context.close()
