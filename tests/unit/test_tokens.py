"""API tokens: created, used, limited, expired and revoked, through the web layer and the CLI."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from havarti.cli import main
from havarti.db.models import Token
from havarti.db.tokens import TokenRepository
from havarti.distributions import NamePattern
from havarti.domain.access import NewToken, issue, lookup, token_hash
from havarti.errors import Forbidden, InvalidRequest
from tests.support import dists
from tests.support.webapp import WebApp, basic_auth, make_webapp


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def post(web: WebApp, dist: dists.Dist, headers: dict[str, str]):
    name, version = dist.filename.split("-")[:2]
    return web.client.post("/", headers=headers, data={
        ":action": "file_upload", "name": name, "version": version.removesuffix(".tar.gz"),
        "content": (io.BytesIO(dist.data), dist.filename)})


def create(web: WebApp, **body) -> str:
    response = web.client.post("/api/tokens", json=body, headers=web.auth)
    assert response.status_code == 201, response.text
    return response.get_json()["token"]


@pytest.fixture
def web(tmp_path) -> WebApp:
    return make_webapp(tmp_path / "data")


def test_token_is_shown_once_and_stored_as_its_hash(web):
    response = web.client.post("/api/tokens", json={"scope": "upload", "note": "ci"},
                               headers=web.auth)
    secret = response.get_json()["token"]
    assert secret.startswith("hvt_") and len(secret) > 40
    listed = web.client.get("/api/tokens", headers=web.auth).get_json()["tokens"]
    assert [(t["scope"], t["note"], t["revoked"]) for t in listed] == [("upload", "ci", None)]
    assert secret not in web.client.get("/api/tokens", headers=web.auth).text
    with web.index.tokens.db.session() as session:
        row = session.get(Token, listed[0]["id"])
        assert row.hash == token_hash(secret) and secret not in (row.hash, row.note, row.projects)


@pytest.mark.parametrize("header", [basic_auth, lambda s: basic_auth(s, "anyone"), bearer])
def test_upload_token_uploads_as_basic_password_or_bearer(web, header):
    secret = create(web, scope="upload")
    wheel = dists.wheel("brie", "1.0")
    assert post(web, wheel, header(secret)).status_code == 200
    page = web.client.get("/simple/brie/?format=json").get_json()
    assert [f["filename"] for f in page["files"]] == [wheel.filename]


def test_read_token_may_not_upload_and_upload_token_may_not_manage(web, caplog):
    read = create(web, scope="read")
    response = post(web, dists.wheel("brie", "1.0"), basic_auth(read))
    assert response.status_code == 403
    assert "read token may not upload" in response.text
    upload = create(web, scope="upload")
    web.upload(dists.wheel("camembert", "1.0"))
    with caplog.at_level(logging.WARNING):
        response = web.client.delete("/api/projects/camembert/files/camembert-1.0-py3-none-any.whl",
                                     headers=bearer(upload))
    assert response.status_code == 403 and "needs a admin token" in response.text
    assert any("access-refused status=403" in r.getMessage() for r in caplog.records)
    assert web.client.get("/api/tokens", headers=bearer(upload)).status_code == 403


def test_upload_token_limited_to_projects_is_refused_elsewhere(web):
    secret = create(web, scope="upload", projects=["acme-*", "tools"])
    assert post(web, dists.wheel("acme-core", "1.0"), bearer(secret)).status_code == 200
    assert post(web, dists.wheel("tools", "1.0"), bearer(secret)).status_code == 200
    refused = post(web, dists.wheel("other", "1.0"), bearer(secret))
    assert refused.status_code == 403
    assert "may not upload to 'other'" in refused.text and "acme-*" in refused.text
    assert web.client.get("/simple/other/").status_code != 200


def test_admin_token_manages(web):
    web.upload(dists.wheel("camembert", "1.0"))
    admin = create(web, scope="admin")
    response = web.client.post("/api/projects/camembert/files/camembert-1.0-py3-none-any.whl/yank",
                               json={"reason": "bad"}, headers=bearer(admin))
    assert response.status_code == 200 and response.get_json()["yanked"] is True
    made = web.client.post("/api/tokens", json={"scope": "read"}, headers=bearer(admin))
    assert made.status_code == 201


def test_revoked_token_is_refused_at_once(web):
    secret = create(web, scope="upload")
    token_id = web.client.get("/api/tokens", headers=web.auth).get_json()["tokens"][0]["id"]
    assert post(web, dists.wheel("brie", "1.0"), bearer(secret)).status_code == 200
    assert web.client.delete(f"/api/tokens/{token_id}", headers=web.auth).status_code == 200
    refused = post(web, dists.wheel("brie", "2.0"), bearer(secret))
    assert refused.status_code == 401 and f"token {token_id} was revoked" in refused.text
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert web.client.delete("/api/tokens/999", headers=web.auth).status_code == 404


def test_expired_token_is_refused(web):
    secret = create(web, scope="upload", expires="1h")
    with web.index.tokens.db.session() as session:
        session.execute(update(Token).values(expires=datetime.now(UTC) - timedelta(seconds=1)))
    refused = post(web, dists.wheel("brie", "1.0"), bearer(secret))
    assert refused.status_code == 401 and "expired" in refused.text


def test_unknown_and_missing_credentials_are_401(web):
    for headers in ({}, bearer("hvt_" + "x" * 43), basic_auth("nope")):
        response = post(web, dists.wheel("brie", "1.0"), headers)
        assert response.status_code == 401 and "wrong or missing passcode" in response.text


def test_last_used_is_written_at_most_once_a_minute(web):
    secret = create(web, scope="upload")
    assert web.index.token(secret).last_used is None
    post(web, dists.wheel("brie", "1.0"), bearer(secret))
    first = web.index.token(secret).last_used
    assert first is not None
    post(web, dists.wheel("brie", "2.0"), bearer(secret))
    assert web.index.token(secret).last_used == first
    with web.index.tokens.db.session() as session:
        session.execute(update(Token).values(last_used=first - timedelta(minutes=2)))
    post(web, dists.wheel("brie", "3.0"), bearer(secret))
    assert web.index.token(secret).last_used > first


def test_read_token_reads_with_read_auth(tmp_path):
    web = make_webapp(tmp_path / "data", READ_AUTH="true")
    secret = create(web, scope="read")
    assert web.client.get("/simple/").status_code == 401
    assert web.client.get("/simple/", headers=basic_auth(secret)).status_code == 200
    assert web.client.get("/simple/", headers=bearer(secret)).status_code == 200
    assert web.client.get("/simple/", headers=web.auth).status_code == 200


def test_tokens_work_without_a_passcode(tmp_path):
    web = make_webapp(tmp_path / "data", passcode=None)
    secret, _ = web.index.issue_token(NewToken.checked("upload"))
    assert post(web, dists.wheel("brie", "1.0"), bearer(secret)).status_code == 200
    refused = post(web, dists.wheel("brie", "2.0"), basic_auth("guess"))
    assert refused.status_code == 403 and "PASSCODE" in refused.text


@pytest.mark.parametrize("body,words", [
    ({"scope": "root"}, "scope must be one of"),
    ({"scope": "read", "projects": ["acme-*"]}, "only upload tokens"),
    ({"scope": "upload", "projects": ["no good"]}, "not a project name"),
    ({"scope": "upload", "expires": "soon"}, "expected a duration"),
    ({"scope": "upload", "note": 5}, "note must be a string"),
])
def test_bad_token_requests_are_400(web, body, words):
    response = web.client.post("/api/tokens", json=body, headers=web.auth)
    assert response.status_code == 400 and words in response.text


def test_admin_page_shows_a_new_token_once(web):
    assert web.client.get("/admin/").status_code == 401
    response = web.client.post("/admin/tokens", data={"scope": "upload", "projects": "acme-*",
                                                      "expires": "90d", "note": "release"},
                               headers={**web.auth, "Origin": "http://localhost"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    secret = response.text.split('<code class="token">')[1].split("<")[0]
    assert web.index.token(secret).projects == ("acme-*",)
    page = web.client.get("/admin/", headers=web.auth).text
    assert secret not in page and "acme-*" in page and "release" in page
    token_id = web.index.token(secret).id
    revoked = web.client.post(f"/admin/tokens/{token_id}/revoke",
                              headers={**web.auth, "Origin": "http://localhost"})
    assert revoked.status_code == 303 and web.index.token(secret).revoked is not None


def test_cli_creates_lists_and_revokes(tmp_path, monkeypatch):
    monkeypatch.setenv("PACKAGE_CACHE", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(main, ["token", "create", "--scope", "upload", "--project", "acme-*",
                                   "--expires", "90d", "--note", "release"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("hvt_")
    listed = runner.invoke(main, ["token", "list"])
    assert "acme-*" in listed.output and "active" in listed.output and secret not in listed.output
    assert runner.invoke(main, ["token", "revoke", "1"]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["token", "list"]).output
    missing = runner.invoke(main, ["token", "revoke", "42"])
    assert missing.exit_code == 2 and "no token 42" in missing.output
    bad = runner.invoke(main, ["token", "create", "--scope", "read", "--project", "x"])
    assert bad.exit_code == 2 and "only upload tokens" in bad.output


def test_principal_rules():
    upload = NewToken.checked("upload", ["Acme_*"])
    assert upload.projects == (NamePattern("acme-*"),)
    assert NamePattern.parse("acme-*").matches("acme-core")
    assert not NamePattern.parse("acme-*").matches("acme")
    assert NamePattern.parse("Foo.Bar").matches("foo-bar")
    with pytest.raises(InvalidRequest):
        NamePattern.parse("*")
    from havarti.domain.access import Principal

    anyone = Principal("upload", (), 1)
    anyone.require_upload_to("free", ())
    with pytest.raises(Forbidden, match="reserved"):
        anyone.require_upload_to("acme-core", (NamePattern("acme-*"),))
    Principal("upload", (NamePattern("acme-*"),), 2).require_upload_to("acme-core",
                                                                       (NamePattern("acme-*"),))
    Principal("admin").require_upload_to("acme-core", (NamePattern("acme-*"),))


def test_repository_find_is_by_hash(db):
    repo = TokenRepository(db)
    secret, record = issue(repo, NewToken.checked("read"))
    assert lookup(repo, secret) == record
    assert repo.find(token_hash(secret)) == record
    assert lookup(repo, secret + "x") is None
