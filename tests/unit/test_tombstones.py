"""Immutable filenames: a deleted private file's name comes back only with the same bytes."""

from __future__ import annotations

import io

from tests.support import dists
from tests.support.webapp import WebApp, make_webapp

FIRST = dists.wheel("emmental", "1.0")
OTHER = dists.wheel("emmental", "1.0", payload_size=100)


def post(web: WebApp, dist: dists.Dist, name: str = "emmental", filename: str | None = None):
    return web.client.post("/", headers=web.auth, data={
        ":action": "file_upload", "name": name, "version": "1.0",
        "content": (io.BytesIO(dist.data), filename or dist.filename)})


def delete(web: WebApp, filename: str) -> None:
    response = web.client.delete(f"/api/projects/emmental/files/{filename}", headers=web.auth)
    assert response.status_code == 200, response.text


def listed(web: WebApp) -> list[str]:
    page = web.client.get("/simple/emmental/?format=json").get_json()
    return [f["filename"] for f in page["files"]]


def test_deleted_filename_with_other_bytes_is_409(tmp_path):
    web = make_webapp(tmp_path / "data")
    assert FIRST.filename == OTHER.filename and FIRST.sha256 != OTHER.sha256
    assert post(web, FIRST).status_code == 200
    delete(web, FIRST.filename)
    refused = post(web, OTHER)
    assert refused.status_code == 409
    assert "filename was used before" in refused.text and "\n" not in refused.text.strip()
    assert listed(web) == []


def test_a_variant_of_a_deleted_filename_is_refused_too(tmp_path):
    web = make_webapp(tmp_path / "data")
    assert post(web, FIRST).status_code == 200
    delete(web, FIRST.filename)
    variant = FIRST.filename.replace("emmental", "Emmental")
    refused = post(web, OTHER, filename=variant)
    assert refused.status_code == 409 and "filename was used before" in refused.text


def test_the_same_bytes_may_come_back(tmp_path):
    web = make_webapp(tmp_path / "data")
    assert post(web, FIRST).status_code == 200
    delete(web, FIRST.filename)
    assert post(web, FIRST).status_code == 200
    assert listed(web) == [FIRST.filename]
    delete(web, FIRST.filename)
    assert post(web, OTHER).status_code == 409
