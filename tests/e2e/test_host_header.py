"""The Host header a client sends, and the absolute URLs Havarti writes (PUBLIC_URL)."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.uploads import post_upload

FORGED = {"Host": "attacker.example"}
#: The pages that write absolute URLs: the JSON API (file URLs) and the UI's settings.
EMBEDDING = ("/pypi/hosted/json", "/pypi/hosted/1.0/json", "/", "/projects/hosted/")


def file_urls(document: dict) -> list[str]:
    return [f["url"] for files in document["releases"].values() for f in files]


def test_public_url_is_used_for_every_absolute_url_whatever_the_host(start_server, upstream):
    server = start_server({"PASSCODE": PASSCODE, "FALLBACK": upstream.url,
                           "PUBLIC_URL": "https://pkgs.example.test/"})
    wheel = dists.wheel("hosted", "1.0")
    assert post_upload(server.url, wheel, PASSCODE).status_code == 200

    document = httpx.get(f"{server.url}/pypi/hosted/json", headers=FORGED).json()
    assert file_urls(document) == [f"https://pkgs.example.test/files/hosted/{wheel.filename}"]
    assert document["urls"][0]["url"] == f"https://pkgs.example.test/files/hosted/{wheel.filename}"
    home = httpx.get(server.url + "/", headers=FORGED)
    # The command as the page shows it (each word in a span of its own).
    shown = unescape(re.sub(r"<[^>]+>", "", home.text))
    assert "pip install -i https://pkgs.example.test/simple/ requests" in shown
    for path in EMBEDDING:
        response = httpx.get(server.url + path, headers=FORGED)
        assert response.status_code == 200, path
        assert "attacker.example" not in response.text, path
        # Nothing depends on the Host: shared caches may keep it.
        assert "host" not in response.headers.get("Vary", "").lower(), path


def test_without_public_url_answers_that_embed_the_host_are_not_shared(start_server, upstream):
    server = start_server({"PASSCODE": PASSCODE, "FALLBACK": upstream.url})
    wheel = dists.wheel("hosted", "1.0")
    assert post_upload(server.url, wheel, PASSCODE).status_code == 200

    document = httpx.get(f"{server.url}/pypi/hosted/json").json()
    assert file_urls(document) == [f"{server.url}/files/hosted/{wheel.filename}"]
    for path in EMBEDDING:
        response = httpx.get(server.url + path, headers=FORGED)
        assert response.status_code == 200, path
        vary = {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}
        assert "host" in vary, path
        assert "private" in response.headers["Cache-Control"], path
    # Answers that do not embed the Host stay cacheable as before.
    page = httpx.get(f"{server.index_url}hosted/", headers=FORGED)
    assert "attacker.example" not in page.text
    assert "private" not in page.headers.get("Cache-Control", "")
    stored = httpx.get(f"{server.url}/files/hosted/{wheel.filename}", headers=FORGED)
    assert stored.headers["Cache-Control"] == "public, max-age=31536000, immutable"
