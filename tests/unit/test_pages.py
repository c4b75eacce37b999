"""The project page as data, rendered as PEP 503 HTML and PEP 691 JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from pypi_simple import ProjectPage as ParsedPage

from havarti.domain.pages import (
    PageFile,
    ProjectPage,
    file_url,
    format_time,
    render_html,
    render_index_html,
    render_index_json,
    render_json,
    sort_versions,
)

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def page() -> ProjectPage:
    return ProjectPage.of_files("demo", [
        PageFile("demo-1.0-py3-none-any.whl", file_url("demo", "demo-1.0-py3-none-any.whl"),
                 {"sha256": "a" * 64}, version="1.0", requires_python=">=3.8,<4",
                 core_metadata={"sha256": "b" * 64}, size=10, upload_time=WHEN.isoformat()),
        PageFile("demo-1.1.tar.gz", file_url("demo", "demo-1.1.tar.gz"), {"sha256": "c" * 64},
                 version="1.1", yanked='bad "release" & more', size=20),
        PageFile("demo-0.9.tar.gz", file_url("demo", "demo-0.9.tar.gz"), {"sha256": "d" * 64},
                 version="0.9", yanked="", size=30),
        PageFile("demo-1.10.tar.gz", file_url("demo", "demo-1.10.tar.gz"), {"sha256": "e" * 64},
                 version="1.10", size=40),
    ])


def test_html_attributes_are_escaped_and_complete():
    html = render_html(page()).decode()
    assert '<meta name="pypi:repository-version" content="1.1">' in html
    assert ('<a href="../../files/demo/demo-1.0-py3-none-any.whl#sha256=' + "a" * 64 +
            '" data-requires-python="&gt;=3.8,&lt;4" data-core-metadata="sha256=' + "b" * 64 +
            '" data-dist-info-metadata="sha256=' + "b" * 64 + '">') in html
    assert 'data-yanked="bad &quot;release&quot; &amp; more"' in html
    assert 'data-yanked=""' in html


def test_json_fields():
    data = json.loads(render_json(page()))
    assert data["meta"] == {"api-version": "1.1"} and data["name"] == "demo"
    files = {f["filename"]: f for f in data["files"]}
    wheel = files["demo-1.0-py3-none-any.whl"]
    assert wheel == {"filename": "demo-1.0-py3-none-any.whl",
                     "url": "../../files/demo/demo-1.0-py3-none-any.whl",
                     "hashes": {"sha256": "a" * 64}, "requires-python": ">=3.8,<4",
                     "yanked": False, "core-metadata": {"sha256": "b" * 64},
                     "data-dist-info-metadata": {"sha256": "b" * 64}, "size": 10,
                     "upload-time": "2024-05-06T07:08:09.123456Z"}
    assert files["demo-1.1.tar.gz"]["yanked"] == 'bad "release" & more'
    # PEP 691: the reason is a non-empty string; without one, yanked is true.
    assert files["demo-0.9.tar.gz"]["yanked"] is True
    assert "core-metadata" not in files["demo-1.1.tar.gz"]
    assert "upload-time" not in files["demo-1.1.tar.gz"]
    # PEP 700: versions, in version order (not string order).
    assert data["versions"] == ["0.9", "1.0", "1.1", "1.10"]


def test_both_renderings_parse_to_the_same_files():
    base = "http://index.test/simple/demo/"
    html = ParsedPage.from_html("demo", render_html(page()), base_url=base)
    from_json = ParsedPage.from_json_data(json.loads(render_json(page())), base_url=base)

    def summary(parsed: ParsedPage) -> list[tuple]:
        return sorted((p.filename, p.url, p.digests["sha256"], p.requires_python, p.is_yanked,
                       p.yanked_reason or None, p.has_metadata) for p in parsed.packages)

    assert summary(html) == summary(from_json)
    wheel = next(p for p in html.packages if p.filename == "demo-1.0-py3-none-any.whl")
    assert wheel.url == "http://index.test/files/demo/demo-1.0-py3-none-any.whl"


def test_file_url_quotes_and_is_relative_to_the_page():
    assert file_url("demo", "demo 1.0+local.tar.gz") == "../../files/demo/demo%201.0%2Blocal.tar.gz"
    assert file_url("demo", "x.whl", relative_to_page=False) == "/files/demo/x.whl"


def test_index_page():
    names = ["alpha", "beta-two"]
    assert '<a href="beta-two/">beta-two</a>' in render_index_html(names).decode()
    assert json.loads(render_index_json(names)) == {
        "meta": {"api-version": "1.1"}, "projects": [{"name": "alpha"}, {"name": "beta-two"}]}


def test_sort_versions_puts_invalid_ones_first():
    assert sort_versions({"1.10", "1.9", "not-a-version", "1.0rc1", "1.0"}) == [
        "not-a-version", "1.0rc1", "1.0", "1.9", "1.10"]


def test_sort_versions_survives_a_number_too_long_for_int():
    # Python refuses int() of over 4,300 digits (ValueError, not InvalidVersion).
    huge = "1" * 5000
    assert sort_versions({"1.0", huge, "2.0"}) == [huge, "1.0", "2.0"]



def test_format_time_is_utc_with_z():
    local = WHEN.astimezone(timezone(timedelta(hours=-5)))
    assert format_time(local) == "2024-05-06T07:08:09.123456Z"
    assert format_time(WHEN.replace(tzinfo=None)) == "2024-05-06T07:08:09.123456Z"


def test_upload_times_are_written_in_pep_700s_form_whatever_upstream_wrote():
    forms = {"2024-05-06T07:08:09.123456Z": "2024-05-06T07:08:09.123456Z",
             "2024-05-06T07:08:09Z": "2024-05-06T07:08:09.000000Z",
             "2024-05-06T09:08:09.5+02:00": "2024-05-06T07:08:09.500000Z",
             "2024-05-06T07:08:09.123456+00:00": "2024-05-06T07:08:09.123456Z"}
    files = [PageFile(f"demo-1.{i}.tar.gz", file_url("demo", f"demo-1.{i}.tar.gz"),
                      {"sha256": "a" * 64}, version=f"1.{i}", upload_time=sent)
             for i, sent in enumerate(forms)]
    entries = json.loads(render_json(ProjectPage.of_files("demo", files)))["files"]
    written = {e["filename"]: e["upload-time"] for e in entries}
    assert [written[f"demo-1.{i}.tar.gz"] for i in range(len(forms))] == list(forms.values())


def test_special_characters_in_filenames_and_hashes_are_escaped():
    odd = PageFile("demo-1.0&<x>.tar.gz", file_url("demo", "demo-1.0&<x>.tar.gz"),
                   {"sha256": 'a"b'}, version="1.0", core_metadata={"sha256": "<c>"})
    html = render_html(ProjectPage.of_files("demo", [odd])).decode()
    assert "demo-1.0&amp;&lt;x&gt;.tar.gz</a>" in html
    assert "#sha256=a&quot;b" in html and 'data-core-metadata="sha256=&lt;c&gt;"' in html
