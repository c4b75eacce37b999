"""The web UI in a real browser against the real server, as a new user would try it."""

from __future__ import annotations

import time

import httpx

from tests.browser.conftest import watch
from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.clients import installed_version

EVIL_README = """# Havarti helpers

<script>document.title = "pwned"</script>

<img src="x" onerror="document.body.dataset.pwned = 'yes'">

Some **bold** text and [a link](https://example.com/docs).
"""


def wait_for_text(page, selector: str, expected: str, timeout: float = 15) -> str:
    """Reload until ``selector`` shows ``expected`` (stats are written every few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        shown = page.locator(selector).inner_text().strip()
        if shown == expected or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)
        page.reload()


def test_new_user_copies_pip_line_installs_finds_project_and_sees_it_counted(
        server, upstream, clients, browser, screens, console_errors):
    upstream.publish("gouda-slicer", dists.wheel("gouda-slicer", "1.2"), "1.2")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = watch(context.new_page(), console_errors)

    page.goto(server.url + "/")
    assert page.get_by_role("heading", name="Havarti package index").is_visible()
    page.get_by_role("button", name="Copy the pip command").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == f"pip install -i {server.index_url} requests"
    screens(page, "home")

    index_url = copied.split()[3]
    result, target = clients.pip_install(index_url, "gouda-slicer")
    assert result.returncode == 0, result.stderr
    assert installed_version(target, "gouda_slicer") == "1.2"

    page.get_by_label("Find a project").fill("Gouda_Sl")
    page.get_by_role("button", name="Search").last.click()
    assert page.url.startswith(server.url + "/projects/?q=Gouda_Sl")
    assert page.locator("#result-count").inner_text().startswith("1 project")
    screens(page, "search")

    page.get_by_role("link", name="gouda-slicer").click()
    assert page.url == server.url + "/projects/gouda-slicer/"
    assert page.locator("#install-line").inner_text().strip() == (
        f"pip install -i {server.index_url} gouda-slicer==1.2")
    row = page.locator("tr", has_text="gouda_slicer-1.2-py3-none-any.whl")
    assert "cached here" in row.inner_text()
    screens(page, "project")

    # A second install is served from Havarti's own storage.
    result, target = clients.pip_install(index_url, "gouda-slicer")
    assert result.returncode == 0, result.stderr

    page.get_by_role("link", name="Stats").click()
    assert wait_for_text(page, "#total-upstream", "1") == "1"
    assert wait_for_text(page, "#total-hits", "1") == "1"
    chart = page.locator("svg#requests-chart")
    for series in ("miss", "hit"):
        bars = chart.locator(f"rect.{series}")
        assert bars.count() == 1
        box = bars.first.bounding_box()
        assert box is not None and box["height"] > 10
    assert "gouda-slicer" in page.locator("table.top").inner_text()
    screens(page, "stats")

    metrics = httpx.get(server.url + "/metrics").text
    assert 'havarti_file_requests_total{result="miss"} 1.0' in metrics
    assert 'havarti_file_requests_total{result="hit"} 1.0' in metrics
    assert console_errors == []
    context.close()


def test_private_package_yank_from_ui_and_sanitised_description(
        server, clients, browser, screens, console_errors, tmp_path):
    old = dists.wheel("havarti-helpers", "1.0", description=EVIL_README,
                      description_content_type="text/markdown")
    new = dists.wheel("havarti-helpers", "2.0", description=EVIL_README,
                      description_content_type="text/markdown")
    result = clients.twine_upload(server.url + "/", PASSCODE, old.write(tmp_path / "dist"),
                                  new.write(tmp_path / "dist"))
    assert result.returncode == 0, result.stdout + result.stderr

    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  http_credentials={"username": "havarti", "password": PASSCODE})
    page = watch(context.new_page(), console_errors)
    page.goto(server.url + "/projects/havarti-helpers/")
    readme = page.locator(".readme")
    assert readme.locator("strong").inner_text() == "bold"
    assert readme.locator("script").count() == 0
    assert page.title() != "pwned"
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.locator("#install-line").inner_text().strip().endswith("havarti-helpers==2.0")
    screens(page, "private-project")

    page.get_by_role("link", name=f"Manage {new.filename}").click()
    screens(page, "file")
    page.get_by_label("Reason for yanking").fill("broken build")
    page.get_by_role("button", name="Yank").click()
    assert page.url.startswith(server.url + "/projects/havarti-helpers/")
    row = page.locator("tr", has_text=new.filename)
    assert "yanked" in row.locator(".badge.yanked").inner_text()
    assert row.locator(".reason").inner_text() == "broken build"
    # pip would now pick 1.0, and the page says so.
    assert page.locator("#install-line").inner_text().strip().endswith("havarti-helpers==1.0")
    screens(page, "yanked")

    simple = httpx.get(server.url + "/simple/havarti-helpers/",
                       headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    yanked = {f["filename"]: f["yanked"] for f in simple["files"]}
    assert yanked == {old.filename: False, new.filename: "broken build"}
    # The README's broken image fails to load, as it should; nothing else may go wrong.
    assert [e for e in console_errors if "Failed to load resource" not in e] == []
    context.close()


def test_pages_fit_a_phone_screen(server, browser, screens):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    for path, name in (("/", "phone-home"), ("/stats/", "phone-stats")):
        page.goto(server.url + path)
        # Nothing wider than the screen: no sideways scrolling of the whole page.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screens(page, name)
    context.close()
