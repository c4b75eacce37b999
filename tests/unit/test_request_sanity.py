"""Hostile paths, queries and bodies: a 4xx with a one-line reason, never a 500.

The app runs with TESTING=True, so an unhandled exception would surface here
as one (Flask propagates it) rather than hide behind a 500 page.
"""

from __future__ import annotations

import pytest

from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.webapp import WebApp, make_webapp


@pytest.fixture
def web(tmp_path, upstream: FakeIndex) -> WebApp:
    upstream.publish("good", dists.wheel("good", "1.0"), "1.0")
    return make_webapp(tmp_path / "data", upstream.url)


def one_line(response) -> str:
    body = response.get_data(as_text=True)
    assert len(body.strip().splitlines()) == 1, body
    assert "Traceback" not in body
    return body


HOSTILE_URLS = [
    ("/simple/%0d%0aSet-Cookie:%20x=1/", "control character"),
    ("/simple/%0d%0a/", "control character"),
    ("/simple/%7f/", "control character"),
    ("/simple/a%00b/", "control character"),
    ("/pypi/%00/json", "control character"),
    ("/pypi/good/%0a/json", "control character"),
    ("/pypi/good/1.0%20or%201/json", "not a valid version"),
    ("/files/good/good-1.0%0d%0a.whl", "control character"),
    ("/projects/a%0d%0ab/", "control character"),
    ("/projects/?page=4611686018427387904", "page must be a whole number"),
    ("/projects/?page=%C2%B2", "page must be a whole number"),
    ("/projects/?page=" + "9" * 5000, "page must be a whole number"),
    ("/projects/?q=%00", "query parameter 'q' contains a control character"),
    ("/simple/?format=%0d%0a", "control character"),
]


def test_hostile_urls_are_a_400_with_a_reason(web, upstream):
    for path, reason in HOSTILE_URLS:
        response = web.client.get(path)
        assert response.status_code == 400, path
        assert reason in one_line(response), path
    assert upstream.requests == []


INVALID_NAMES = ["%23", "%3f", "%09", "%20", "-leading", "trailing.", "caf%C3%A9", "x" * 256, "..",
                 "%25", "a%22b", "a%20b"]
NAME_ROUTES = ["/simple/{}/", "/simple/{}", "/pypi/{}/json", "/pypi/{}/1.0/json",
               "/files/{}/good-1.0-py3-none-any.whl", "/files/{}/good-1.0-py3-none-any.whl.metadata",
               "/projects/{}/", "/projects/{}/files/x.whl/"]


def test_an_invalid_project_name_is_a_400_and_never_goes_upstream(web, upstream):
    for route in NAME_ROUTES:
        for name in INVALID_NAMES:
            path = route.format(name)
            response = web.client.get(path)
            if name == "..":
                # The client resolves dot segments: that is another path, never a name.
                assert response.status_code in (400, 404), path
                continue
            assert response.status_code == 400, (path, response.status)
            body = one_line(response)
            assert "valid project name" in body or "control character" in body, (path, body)
    # Nothing was asked of upstream: not its root index ("#"), not a query ("?"), nothing.
    assert upstream.requests == []


def test_a_valid_name_still_goes_upstream(web, upstream):
    assert web.client.get("/simple/Good/").status_code == 301
    assert web.client.get("/simple/good/").status_code == 200
    assert web.client.get("/pypi/good/1.0/json").status_code == 200
    assert upstream.page_count("good") >= 1


def test_yank_reason_that_no_database_can_store_is_a_400(web):
    wheel = dists.wheel("gruyere", "1.0")
    web.upload(wheel)
    api = f"/api/projects/gruyere/files/{wheel.filename}/yank"
    for body, reason in [
        ('{"reason": "' + "[" * 100_000 + '"}', "larger than"),
        ('{"reason": ' + "[" * 30_000 + "]" * 30_000 + "}", "must be a JSON object"),
        ('{"reason": "\\ud800"}', "not valid Unicode"),
        ('{"reason": "nul\\u0000byte"}', "control character"),
        ('{"reason": "bell\\u0007"}', "control character"),
        ("\xff\xfe", "must be a JSON object"),
    ]:
        response = web.client.post(api, data=body.encode("utf-8", "surrogateescape"),
                                   content_type="application/json", headers=web.auth)
        assert response.status_code in (400, 413), (body[:40], response.status)
        assert reason in one_line(response), (body[:40], response.get_data(as_text=True))
    files = web.client.get("/simple/gruyere/?format=json").get_json()["files"]
    assert files[0]["yanked"] is False
