"""The INDEX_TTL>0 micro-cache of project pages: replays, expiry, invalidation, 304s."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from havarti.web import hotpages


class Pages:
    """A stand-in for the Flask app: a page whose content the test changes."""

    def __init__(self) -> None:
        self.version = 1
        self.calls = 0

    def __call__(self, environ: dict, start_response: Any) -> Any:
        self.calls += 1
        request = Request(environ)
        if request.method == "POST":
            self.version += 1
            return Response("uploaded")(environ, start_response)
        if request.path == "/simple/missing/":
            return Response("no such project", status=404)(environ, start_response)
        response = Response(f"page v{self.version} for {request.headers.get('Accept', '-')}"
                            f"{' gzip' if 'gzip' in request.headers.get('Accept-Encoding', '') else ''}")
        response.set_etag(f"v{self.version}")
        response.headers["Vary"] = "Accept"
        return response.make_conditional(request)(environ, start_response)


@pytest.fixture
def pages() -> Pages:
    return Pages()


def client(pages: Pages, ttl: int = 300, read_auth: bool = False) -> Client:
    return Client(hotpages.wrap(pages, ttl, read_auth))


def test_a_warm_page_is_replayed_without_asking_the_app(pages):
    c = client(pages)
    first = c.get("/simple/demo/")
    again = c.get("/simple/demo/")
    assert again.data == first.data == b"page v1 for -"
    assert again.headers["ETag"] == '"v1"' and again.headers["Vary"] == "Accept"
    assert pages.calls == 1


def test_each_accept_header_has_its_own_entry(pages):
    c = client(pages)
    assert c.get("/simple/demo/", headers={"Accept": "json"}).data == b"page v1 for json"
    assert c.get("/simple/demo/", headers={"Accept": "html"}).data == b"page v1 for html"


def test_each_accept_encoding_has_its_own_entry(pages):
    c = client(pages)
    packed = {"Accept": "json", "Accept-Encoding": "gzip"}
    assert c.get("/simple/demo/", headers=packed).data == b"page v1 for json gzip"
    assert c.get("/simple/demo/", headers={"Accept": "json"}).data == b"page v1 for json"
    assert c.get("/simple/demo/", headers=packed).data == b"page v1 for json gzip"
    assert pages.calls == 2


def test_an_upload_in_this_process_shows_at_once(pages):
    c = client(pages)
    c.get("/simple/demo/")
    c.post("/legacy/")
    assert c.get("/simple/demo/").data == b"page v2 for -"


def test_other_processes_changes_show_after_hot_seconds(pages):
    now = [1000.0]
    c = Client(hotpages.wrap(pages, 300, False, clock=lambda: now[0]))
    c.get("/simple/demo/")
    pages.version = 2  # changed behind this process's back
    now[0] += hotpages.HOT_SECONDS - 0.01
    assert c.get("/simple/demo/").data.startswith(b"page v1")
    now[0] += 0.02
    assert c.get("/simple/demo/").data.startswith(b"page v2")


def test_a_matching_if_none_match_gets_304_from_the_replay(pages):
    c = client(pages)
    c.get("/simple/demo/")
    response = c.get("/simple/demo/", headers={"If-None-Match": 'W/"other", "v1"'})
    assert response.status_code == 304 and response.data == b""
    assert response.headers["ETag"] == '"v1"'
    assert c.get("/simple/demo/", headers={"If-None-Match": '"v0"'}).status_code == 200
    assert pages.calls == 1


@pytest.mark.parametrize("path", ["/simple/missing/", "/simple/demo/?format=json", "/simple/",
                                  "/files/demo/demo-1.0.tar.gz"])
def test_only_successful_plain_project_pages_are_kept(pages, path):
    c = client(pages)
    c.get(path)
    c.get(path)
    assert pages.calls == 2


@pytest.mark.parametrize(("ttl", "read_auth"), [(0, False), (300, True)])
def test_off_when_pages_revalidate_or_reads_need_the_passcode(pages, ttl, read_auth):
    c = client(pages, ttl, read_auth)
    c.get("/simple/demo/")
    c.get("/simple/demo/")
    assert pages.calls == 2
