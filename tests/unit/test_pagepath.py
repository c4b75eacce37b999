"""The project page's own way in (havarti.web.pagepath): the same answers as the Flask handler."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from tests.support.dists import wheel
from tests.support.webapp import WebApp, make_webapp

PIP = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
       "text/html; q=0.01")
ACCEPTS = [None, PIP, "text/html", "application/vnd.pypi.simple.v1+html",
           "application/vnd.pypi.simple.latest+json", "*/*"]


@pytest.fixture
def web(tmp_path) -> WebApp:
    web = make_webapp(tmp_path)
    web.upload(wheel("tiny", "1.0"))
    for version in ("1.1", "1.2", "1.3", "1.4", "1.5"):
        web.upload(wheel("tiny", version))
    return web


def _flask_view_refuses(web: WebApp) -> None:
    def refused(**_: Any) -> Any:
        raise AssertionError("the Flask handler was asked")
    web.app.view_functions["simple.project"] = refused


def _answer(web: WebApp, path: str, method: str = "GET", **headers: str) -> tuple:
    response = web.client.open(path, method=method, headers=headers)
    # The server adds its own Date to every answer (gunicorn does): not the page's.
    kept = {k: v for k, v in response.headers.items() if k != "Date"}
    return response.status_code, kept, response.get_data()


@pytest.mark.parametrize("encoding", [None, "gzip, deflate", "br;q=1.0, gzip;q=0.8, *;q=0.1"])
@pytest.mark.parametrize("accept", ACCEPTS)
def test_a_page_gets_the_flask_handlers_answer(web, accept, encoding):
    headers = {"Accept": accept} if accept else {}
    if encoding:
        headers["Accept-Encoding"] = encoding
    # A query string sends the request through Flask: the reference answer.
    flask_status, flask_headers, flask_body = _answer(web, "/simple/tiny/?via=flask", **headers)
    _flask_view_refuses(web)
    status, fast_headers, body = _answer(web, "/simple/tiny/", **headers)
    assert (status, fast_headers, body) == (flask_status, flask_headers, flask_body)
    assert status == 200
    if encoding:
        assert fast_headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(body)
    else:
        assert "Content-Encoding" not in fast_headers
    assert b"tiny-1.1-py3-none-any.whl" in body


@pytest.mark.parametrize("encoding", ["gzip;q=0", "identity", "br", "*;q=0", "gzip;q=0, *"])
def test_gzip_only_when_the_client_takes_it(web, encoding):
    status, headers, body = _answer(web, "/simple/tiny/", **{"Accept": PIP,
                                                             "Accept-Encoding": encoding})
    assert status == 200 and "Content-Encoding" not in headers and body.startswith(b"{")


def test_each_encoding_has_its_own_etag_and_304(web):
    _, plain, plain_body = _answer(web, "/simple/tiny/", Accept=PIP)
    _, packed, packed_body = _answer(web, "/simple/tiny/", **{"Accept": PIP,
                                                              "Accept-Encoding": "gzip"})
    assert gzip.decompress(packed_body) == plain_body and len(packed_body) < len(plain_body)
    assert packed["ETag"] != plain["ETag"]
    assert "Accept-Encoding" in plain["Vary"] and "Accept-Encoding" in packed["Vary"]
    again = _answer(web, "/simple/tiny/", **{"Accept": PIP, "Accept-Encoding": "gzip",
                                             "If-None-Match": packed["ETag"]})
    assert again[0] == 304
    # The plain representation's tag does not name the gzip one.
    other = _answer(web, "/simple/tiny/", **{"Accept": PIP, "Accept-Encoding": "gzip",
                                             "If-None-Match": plain["ETag"]})
    assert other[0] == 200


def test_if_none_match_and_head_answer_as_flask_does(web):
    status, headers, _ = _answer(web, "/simple/tiny/", Accept=PIP)
    reference = _answer(web, "/simple/tiny/?via=flask", **{"Accept": PIP,
                                                            "If-None-Match": headers["ETag"]})
    head_reference = _answer(web, "/simple/tiny/?via=flask", method="HEAD", Accept=PIP)
    _flask_view_refuses(web)
    assert _answer(web, "/simple/tiny/", **{"Accept": PIP, "If-None-Match": headers["ETag"]}) \
        == reference
    assert reference[0] == 304 and reference[2] == b""
    # A weak or listed tag names the same representation.
    weak = f'"other", W/{headers["ETag"]}'
    assert _answer(web, "/simple/tiny/", **{"Accept": PIP, "If-None-Match": weak})[0] == 304
    assert _answer(web, "/simple/tiny/", method="HEAD", Accept=PIP) == head_reference
    assert head_reference[2] == b"" and head_reference[1]["Content-Length"] != "0"


def test_an_upload_shows_on_the_next_request(web):
    _flask_view_refuses(web)
    before = _answer(web, "/simple/tiny/", Accept=PIP)
    web.app.view_functions.pop("simple.project")
    web.upload(wheel("tiny", "2.0"))
    after = _answer(web, "/simple/tiny/", Accept=PIP)
    assert b"tiny-2.0" in after[2] and after[1]["ETag"] != before[1]["ETag"]


def test_errors_are_answered_once_by_the_one_mapping(web):
    # Upstream is unreachable in this app: the name is unknown here and upstream fails.
    reference = _answer(web, "/simple/nothing-here/?via=flask", Accept=PIP)
    assert reference[0] == 502
    status, headers, body = _answer(web, "/simple/nothing-here/", Accept=PIP)
    assert status == 502 and body == reference[2] and body.count(b"\n") == 1


@pytest.mark.parametrize("path,status", [("/simple/Tiny/", 301), ("/simple/tiny", 301)])
def test_other_names_are_left_to_flask(web, path, status):
    assert web.client.get(path).status_code == status


def test_nothing_acceptable_is_a_406_from_flask(web):
    status, _, body = _answer(web, "/simple/tiny/", Accept="image/png")
    assert status == 406 and b"acceptable formats" in body
