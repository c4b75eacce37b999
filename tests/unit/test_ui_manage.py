"""Yank, unyank and delete private files: the JSON API, the HTML forms and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.webapp import WebApp, basic_auth, make_webapp

WHEEL = dists.wheel("gruyere", "1.0")
API = f"/api/projects/gruyere/files/{WHEEL.filename}"
FORM = f"/projects/gruyere/files/{WHEEL.filename}"


@pytest.fixture
def web(tmp_path, upstream: FakeIndex) -> WebApp:
    web = make_webapp(tmp_path / "data", upstream.url)
    web.upload(WHEEL)
    return web


def simple_file(web: WebApp) -> Any:
    files = web.client.get("/simple/gruyere/?format=json").get_json()["files"]
    return next((f for f in files if f["filename"] == WHEEL.filename), None)


def test_api_yank_and_unyank_change_the_simple_page_and_are_audited(web):
    response = web.client.post(f"{API}/yank", json={"reason": "broken   build"}, headers=web.auth,
                               environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert response.status_code == 200
    assert response.get_json() == {"project": "gruyere", "filename": WHEEL.filename,
                                   "yanked": True, "yanked_reason": "broken build",
                                   "deleted": False}
    assert simple_file(web)["yanked"] == "broken build"
    assert 'data-yanked="broken build"' in web.client.get("/simple/gruyere/").get_data(as_text=True)

    assert web.client.post(f"{API}/unyank", headers=web.auth).status_code == 200
    assert simple_file(web)["yanked"] is False

    changes = web.index.audit_log("gruyere")
    assert [(c.action, c.filename) for c in changes] == [("unyank", WHEEL.filename),
                                                         ("yank", WHEEL.filename)]
    assert changes[1].remote_addr == "10.1.2.3" and changes[1].detail == "broken build"
    audit = web.client.get("/api/projects/gruyere/audit", headers=web.auth).get_json()
    assert [c["action"] for c in audit["changes"]] == ["unyank", "yank"]


def test_api_delete_removes_file_row_and_bytes(web):
    assert web.download(f"/files/gruyere/{WHEEL.filename}") == WHEEL.data
    response = web.client.delete(API, headers=web.auth)
    assert response.status_code == 200 and response.get_json()["deleted"] is True
    assert simple_file(web) is None
    assert web.client.get(f"/files/gruyere/{WHEEL.filename}").status_code == 404
    assert not any(web.index.storage.list())
    # Still private: it goes on shadowing any public project of the same name.
    assert web.index.projects.is_private("gruyere")


def test_form_yank_redirects_to_the_project_page_showing_it(web):
    response = web.client.post(f"{FORM}/yank", data={"reason": "oops"}, headers=web.auth)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/projects/gruyere/?version=1.0#{WHEEL.filename}")
    page = web.client.get("/projects/gruyere/").get_data(as_text=True)
    assert 'class="badge yanked"' in page and '<span class="reason">oops</span>' in page
    assert "No installable version" in page


def test_form_delete_goes_back_to_the_project(web):
    response = web.client.post(f"{FORM}/delete", headers=web.auth)
    assert response.status_code == 303
    assert WHEEL.filename not in web.client.get("/projects/gruyere/").get_data(as_text=True)


def test_file_page_offers_the_forms_for_private_files_only(web, upstream):
    page = web.client.get(f"{FORM}/").get_data(as_text=True)
    assert f'action="{FORM}/yank"' in page and f'action="{FORM}/delete"' in page
    upstream.publish("emmental", dists.wheel("emmental", "1.0"), "1.0")
    page = web.client.get("/projects/emmental/files/emmental-1.0-py3-none-any.whl/").get_data(as_text=True)
    assert "/yank" not in page and "only private files" in page


def one_line(response) -> str:
    body = response.get_data(as_text=True)
    assert len(body.strip().splitlines()) == 1
    return body


def test_wrong_or_missing_passcode_is_401(web):
    for headers in ({}, basic_auth("wrong")):
        response = web.client.post(f"{API}/yank", json={}, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert "passcode" in one_line(response)
    assert web.client.delete(API).status_code == 401
    assert web.client.post(f"{FORM}/delete").status_code == 401
    assert simple_file(web)["yanked"] is False


def test_managing_is_disabled_without_a_passcode(tmp_path, upstream):
    web = make_webapp(tmp_path / "data", upstream.url, passcode=None)
    response = web.client.post(f"{API}/yank", json={}, headers=basic_auth("anything"))
    assert response.status_code == 403
    assert "PASSCODE" in one_line(response)


@pytest.mark.parametrize("path, body, status, reason", [
    ("/api/projects/gruyere/files/nope-1.0.tar.gz/yank", {}, 404, "no file 'nope-1.0.tar.gz'"),
    (f"/api/projects/other/files/{WHEEL.filename}/yank", {}, 404, "in project 'other'"),
    (f"{API}/yank", ["not", "an", "object"], 400, "must be a JSON object"),
    (f"{API}/yank", {"reason": 42}, 400, "reason must be a string"),
    (f"{API}/yank", {"reason": "x" * 501}, 400, "longer than 500"),
])
def test_api_refusals(web, path, body, status, reason):
    response = web.client.post(path, json=body, headers=web.auth)
    assert response.status_code == status
    assert reason in one_line(response)
    assert simple_file(web)["yanked"] is False


def test_cached_upstream_files_cannot_be_managed(web, upstream):
    upstream.publish("emmental", dists.wheel("emmental", "1.0"), "1.0")
    web.download("/files/emmental/emmental-1.0-py3-none-any.whl")
    response = web.client.post("/api/projects/emmental/files/emmental-1.0-py3-none-any.whl/yank",
                               json={"reason": "no"}, headers=web.auth)
    assert response.status_code == 409
    assert "only uploaded files" in one_line(response)


def test_cross_site_form_post_is_refused(web):
    response = web.client.post(f"{FORM}/yank", data={"reason": "csrf"}, headers={
        **web.auth, "Origin": "http://evil.example"})
    assert response.status_code == 403
    assert "cross-site" in one_line(response)
    assert simple_file(web)["yanked"] is False


def test_unknown_form_action_is_404(web):
    response = web.client.post(f"{FORM}/melt", headers=web.auth)
    assert response.status_code == 404
    assert "no action 'melt'" in one_line(response)


@pytest.mark.parametrize("headers", [
    {"Origin": "null"},
    {"Origin": "http://evil.example"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "https://localhost:8443"},
    {"Origin": "not a url"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"},
    {"Referer": "http://evil.example/attack.html"},
], ids=["null", "other-host", "suffix-host", "other-port", "garbage", "fetch-cross-site",
        "fetch-same-site", "referer"])
def test_state_changes_from_other_origins_are_refused(web, headers):
    """Form posts, the JSON API and uploads alike: a browser on another site may change nothing."""
    attempts = [
        web.client.post(f"{FORM}/yank", data={"reason": "csrf"}, headers={**web.auth, **headers}),
        web.client.post(f"{API}/yank", data={"reason": "csrf"}, headers={**web.auth, **headers}),
        web.client.post(f"{API}/yank", json={"reason": "csrf"}, headers={**web.auth, **headers}),
        web.client.post(f"{API}/unyank", headers={**web.auth, **headers}),
        web.client.delete(API, headers={**web.auth, **headers}),
        web.client.post(f"{FORM}/delete", headers={**web.auth, **headers}),
        web.client.post("/", headers={**web.auth, **headers},
                        data={":action": "file_upload", "name": "other", "version": "1.0"}),
    ]
    for response in attempts:
        assert response.status_code == 403, (response.request.path, response.status)
        assert "cross-site request refused" in one_line(response)
    assert simple_file(web)["yanked"] is False


def test_same_origin_browsers_and_non_browser_clients_may_change(web):
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin",
            "Referer": "http://localhost/projects/gruyere/"}
    response = web.client.post(f"{FORM}/yank", data={"reason": "mine"},
                               headers={**web.auth, **same})
    assert response.status_code == 303
    assert simple_file(web)["yanked"] == "mine"
    # curl / scripts send no Origin at all.
    assert web.client.post(f"{API}/unyank", headers=web.auth).status_code == 200
    public = make_webapp(web.app.config["HAVARTI_SETTINGS"].package_cache.parent / "public",
                         PUBLIC_URL="https://pkgs.example.com/")
    public.upload(WHEEL)
    response = public.client.post(f"{API}/yank", json={"reason": "x"},
                                  headers={**public.auth, "Origin": "https://pkgs.example.com"})
    assert response.status_code == 200


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", "reason=csrf"),
    ("multipart/form-data; boundary=x", "--x--\r\n"),
    ("text/plain", '{"reason": "csrf"}'),
    (None, '{"reason": "csrf"}'),
])
def test_the_json_api_takes_only_json_bodies(web, content_type, body):
    headers = {**web.auth} | ({"Content-Type": content_type} if content_type else {})
    response = web.client.post(f"{API}/yank", data=body, headers=headers)
    assert response.status_code == 415
    assert "application/json" in one_line(response)
    assert simple_file(web)["yanked"] is False
    # Bodiless calls need no type.
    assert web.client.post(f"{API}/unyank", headers=web.auth).status_code == 200
