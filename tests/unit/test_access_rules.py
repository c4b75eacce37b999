"""Reserved names and package policies through the web layer, against the fake upstream."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest
from click.testing import CliRunner

from havarti.cli import main
from havarti.domain.access import NewToken
from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.webapp import WebApp, make_webapp

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
ORIGIN = {"Origin": "http://localhost"}


def post(web: WebApp, dist: dists.Dist, headers: dict[str, str]):
    name, version = dist.filename.split("-")[:2]
    return web.client.post("/", headers=headers, data={
        ":action": "file_upload", "name": name, "version": version.removesuffix(".tar.gz"),
        "content": (io.BytesIO(dist.data), dist.filename)})


def asked_about(upstream: FakeIndex, name: str) -> list[str]:
    return [path for path in upstream.requests if name in path]


def listed(web: WebApp, name: str) -> list[str]:
    return [f["filename"] for f in web.client.get(f"/simple/{name}/", headers=JSON).get_json()["files"]]


def test_a_reserved_name_never_asks_upstream_and_404s_until_uploaded(tmp_path, upstream):
    theirs = dists.wheel("acme-core", "9.0")
    upstream.publish("acme-core", theirs, "9.0")
    web = make_webapp(tmp_path / "data", upstream.url, RESERVED_NAMES="acme-*")
    page = web.client.get("/simple/acme-core/")
    assert page.status_code == 404 and "reserved (acme-*)" in page.text
    assert web.client.get(f"/files/acme-core/{theirs.filename}").status_code == 404
    assert web.client.get("/pypi/acme-core/json").status_code == 404
    assert web.client.get("/simple/acme_core/", follow_redirects=True).status_code == 404

    token, _ = web.index.issue_token(NewToken.checked("upload"))
    refused = post(web, dists.wheel("acme-core", "1.0"), {"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and "reserved (acme-*)" in refused.text
    scoped, _ = web.index.issue_token(NewToken.checked("upload", ["acme-*"]))
    ours = dists.wheel("acme-core", "1.0")
    assert post(web, ours, {"Authorization": f"Bearer {scoped}"}).status_code == 200
    assert listed(web, "acme-core") == [ours.filename]
    assert web.client.get(f"/files/acme-core/{theirs.filename}").status_code == 404
    assert web.client.get("/pypi/acme-core/json").get_json()["info"]["version"] == "1.0"
    assert asked_about(upstream, "acme") == []


def test_reserving_from_the_api_takes_effect_at_once(tmp_path, upstream):
    upstream.publish("widget", dists.wheel("widget", "1.0"), "1.0")
    web = make_webapp(tmp_path / "data", upstream.url)
    assert web.client.get("/simple/widget/").status_code == 200
    made = web.client.post("/api/reserved", json={"pattern": "Widget", "note": "ours"},
                           headers=web.auth)
    assert made.status_code == 201 and made.get_json()["pattern"] == "widget"
    before = len(asked_about(upstream, "widget"))
    assert web.client.get("/simple/widget/").status_code == 404
    assert len(asked_about(upstream, "widget")) == before
    again = web.client.post("/api/reserved", json={"pattern": "widget"}, headers=web.auth)
    assert again.status_code == 409
    assert web.client.post("/api/reserved", json={"pattern": "bad name"},
                           headers=web.auth).status_code == 400
    listed_ = web.client.get("/api/reserved", headers=web.auth).get_json()["reserved"]
    assert [r["pattern"] for r in listed_] == ["widget"]
    assert web.client.delete(f"/api/reserved/{listed_[0]['id']}", headers=web.auth).status_code == 200
    assert web.client.get("/simple/widget/").status_code == 200
    assert [a.action for a in web.index.audit_log("widget")] == ["unreserve", "reserve"]


def test_a_denied_version_is_left_off_and_403_even_when_cached(tmp_path, upstream):
    old, new = dists.wheel("urllib3", "1.26.4"), dists.wheel("urllib3", "1.26.5")
    upstream.publish("urllib3", old, "1.26.4")
    upstream.publish("urllib3", new, "1.26.5")
    web = make_webapp(tmp_path / "data", upstream.url)
    assert web.download(f"/files/urllib3/{old.filename}") == old.data  # cached now
    made = web.client.post("/api/policies", json={"action": "deny", "match": "urllib3<1.26.5",
                                                  "reason": "CVE-2021-33503"}, headers=web.auth)
    assert made.status_code == 201, made.text
    assert listed(web, "urllib3") == [new.filename]
    assert old.filename not in web.client.get("/simple/urllib3/").text
    refused = web.client.get(f"/files/urllib3/{old.filename}")
    assert refused.status_code == 403 and "CVE-2021-33503" in refused.text
    assert web.client.head(f"/files/urllib3/{old.filename}").status_code == 403
    assert web.client.get(f"/files/urllib3/{old.filename}.metadata").status_code == 403
    document = web.client.get("/pypi/urllib3/json").get_json()
    assert document["releases"]["1.26.4"] == [] and document["releases"]["1.26.5"]
    assert web.download(f"/files/urllib3/{new.filename}") == new.data

    rule_id = made.get_json()["id"]
    assert web.client.delete(f"/api/policies/{rule_id}", headers=web.auth).status_code == 200
    assert sorted(listed(web, "urllib3")) == sorted([old.filename, new.filename])
    assert web.client.get(f"/files/urllib3/{old.filename}").status_code == 200
    assert [a.action for a in web.index.audit_log("urllib3")] == ["policy-remove", "policy-add"]


def test_a_denied_project_is_403_and_not_asked_of_upstream(tmp_path, upstream):
    upstream.publish("evil-pkg", dists.wheel("evil-pkg", "1.0"), "1.0")
    policy = tmp_path / "policy.toml"
    policy.write_text('[[deny]]\nmatch = "Evil_Pkg"\nreason = "malware"\n')
    web = make_webapp(tmp_path / "data", upstream.url, POLICY_FILE=str(policy))
    page = web.client.get("/simple/evil-pkg/")
    assert page.status_code == 403 and "malware" in page.text
    assert web.client.get("/pypi/evil-pkg/json").status_code == 403
    assert web.client.get("/files/evil-pkg/evil_pkg-1.0-py3-none-any.whl").status_code == 403
    assert asked_about(upstream, "evil") == []
    rules = web.client.get("/api/policies", headers=web.auth).get_json()["rules"]
    assert rules == [{"id": None, "action": "deny", "match": "evil-pkg", "filename": "",
                      "reason": "malware", "source": "POLICY_FILE"}]


def test_allow_list_mode_and_private_files_are_not_subject(tmp_path, upstream):
    upstream.publish("numpy", dists.wheel("numpy", "1.0"), "1.0")
    upstream.publish("pandas", dists.wheel("pandas", "1.0"), "1.0")
    policy = tmp_path / "policy.toml"
    policy.write_text('allow = ["numpy"]\n')
    web = make_webapp(tmp_path / "data", upstream.url, POLICY_FILE=str(policy))
    assert web.client.get("/simple/numpy/").status_code == 200
    refused = web.client.get("/simple/pandas/")
    assert refused.status_code == 403 and "allow-list" in refused.text
    mine = dists.wheel("mine", "1.0")
    web.upload(mine)
    assert listed(web, "mine") == [mine.filename]
    assert web.client.get(f"/files/mine/{mine.filename}").status_code == 200


@pytest.mark.parametrize("body,words", [
    ({"action": "deny"}, "needs a project"),
    ({"action": "nope", "match": "x"}, "deny or allow"),
    ({"action": "deny", "match": "x<<1"}, "not a version specifier"),
    ({"action": "deny", "match": ["x"]}, "match must be a string"),
])
def test_bad_policy_requests_are_400(tmp_path, body, words):
    web = make_webapp(tmp_path / "data")
    response = web.client.post("/api/policies", json=body, headers=web.auth)
    assert response.status_code == 400 and words in response.text
    assert web.client.delete("/api/policies/9", headers=web.auth).status_code == 404
    assert web.client.post("/api/policies", json={"action": "deny", "match": "x"}).status_code == 401


def test_admin_page_manages_reserved_names_and_policies(tmp_path):
    web = make_webapp(tmp_path / "data", RESERVED_NAMES="corp-*")
    assert web.client.post("/admin/reserved", data={"pattern": "acme-*"},
                           headers={**web.auth, **ORIGIN}).status_code == 303
    assert web.client.post("/admin/policies", data={"action": "deny", "match": "evil-pkg",
                                                    "reason": "malware"},
                           headers={**web.auth, **ORIGIN}).status_code == 303
    page = web.client.get("/admin/", headers=web.auth).text
    assert "acme-*" in page and "corp-*" in page and "evil-pkg" in page and "malware" in page
    assert web.index.policy().project_refusal("evil-pkg") is not None
    assert web.index.policy().reserved_by("acme-x") is not None


def test_cli_reserves_and_checks_requirements(tmp_path, monkeypatch):
    monkeypatch.setenv("PACKAGE_CACHE", str(tmp_path))
    policy = tmp_path / "policy.toml"
    policy.write_text('deny = [{match = "urllib3<1.26.5", reason = "CVE-2021-33503"}]\n')
    monkeypatch.setenv("POLICY_FILE", str(policy))
    runner = CliRunner()
    assert runner.invoke(main, ["reserved", "add", "acme-*", "--note", "ours"]).exit_code == 0
    assert "acme-*" in runner.invoke(main, ["reserved", "list"]).output
    assert runner.invoke(main, ["reserved", "add", "acme-*"]).exit_code == 2
    added = runner.invoke(main, ["policy", "add", "deny", "evil-pkg", "--reason", "malware"])
    assert added.exit_code == 0 and "added rule 1" in added.output
    assert "deny evil-pkg (malware)" in runner.invoke(main, ["policy", "list"]).output
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("urllib3==1.26.0\nrequests>=2\nevil-pkg\nurllib3==2.0\n")
    checked = runner.invoke(main, ["policy", "check", "-r", str(requirements)])
    assert checked.exit_code == 1
    lines = checked.output.splitlines()
    assert lines[0].startswith("BLOCKED  urllib3==1.26.0") and "CVE-2021-33503" in lines[0]
    assert lines[1].startswith("ok       requests")
    assert lines[2].startswith("BLOCKED  evil-pkg") and "malware" in lines[2]
    assert lines[3].startswith("ok       urllib3==2.0")
    assert lines[-1] == "2 of 4 requirements blocked"
    bad = runner.invoke(main, ["policy", "add", "deny", "x<<1"])
    assert bad.exit_code == 2 and "not a version specifier" in bad.output
    assert runner.invoke(main, ["policy", "remove", "1"]).exit_code == 0
    assert runner.invoke(main, ["policy", "remove", "1"]).exit_code == 2


@pytest.mark.parametrize("body", [
    {"action": "deny", "match": "x", "reason": "a\x00b"},
    {"action": "deny", "filename": "*\ud800.whl"},
    {"action": "deny", "match": "x", "reason": "r" * 201},
])
def test_policy_text_no_database_could_store_is_400(tmp_path, body):
    web = make_webapp(tmp_path / "data")
    response = web.client.post("/api/policies", json=body, headers=web.auth)
    assert response.status_code == 400, response.text
    note = web.client.post("/api/reserved", json={"pattern": "x", "note": "\x00"}, headers=web.auth)
    assert note.status_code == 400
    token = web.client.post("/api/tokens", json={"scope": "read", "note": "\ud800"},
                            headers=web.auth)
    assert token.status_code == 400


def test_policy_check_api(tmp_path):
    web = make_webapp(tmp_path / "data")
    web.client.post("/api/policies", json={"action": "deny", "match": "urllib3<1.26.5"},
                    headers=web.auth)
    answer = web.client.get("/api/policies/check?requirement=urllib3==1.26.0"
                            "&requirement=urllib3==2.0", headers=web.auth).get_json()
    assert list(answer["blocked"]) == ["urllib3==1.26.0"] and answer["allowed"] == ["urllib3==2.0"]
    bad = web.client.get("/api/policies/check?requirement=%3D%3D", headers=web.auth)
    assert bad.status_code == 400 and "not a requirement" in bad.text


def test_the_warm_page_path_reads_no_rules_per_request(tmp_path, upstream):
    from sqlalchemy import event

    upstream.publish("urllib3", dists.wheel("urllib3", "1.26.4"), "1.26.4")
    web = make_webapp(tmp_path / "data", upstream.url, RESERVED_NAMES="acme-*", INDEX_TTL="3600")
    web.client.post("/api/policies", json={"action": "deny", "match": "urllib3<1"}, headers=web.auth)
    assert web.client.get("/simple/urllib3/").status_code == 200  # warm: page and policy loaded
    statements: list[str] = []
    event.listen(cast(Any, web.index.tokens).db.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    for _ in range(20):
        assert web.client.get("/simple/urllib3/").status_code == 200
    rules_read = [s for s in statements if "policy_rules" in s or "reserved_names" in s]
    # At most one refresh of the rules in the POLICY_REFRESH window, never one per request.
    assert len(rules_read) <= 2, rules_read
    assert not any("tokens" in s for s in statements)
