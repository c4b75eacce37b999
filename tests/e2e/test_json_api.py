"""The PyPI JSON API as its clients read it: ``info`` from core metadata for private
projects, a document built from the simple page when upstream has no JSON API, and
poetry's PyPI repository (a real JSON-API reader) against Havarti.

pip-audit is not used: it asks PyPI's own host for vulnerabilities whatever index it is
given (its ``--index-url`` steers only pip's resolution), so it never reads Havarti's
JSON API.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import PASSCODE
from tests.support import dists
from tests.support.proxy import file_url, module_fixtures
from tests.support.server import HavartiServer
from tests.support.uploads import assert_refused, post_upload

upstream, server, upstream_restored = module_fixtures({"UPSTREAM_MERGE": "json-merged"})

AUTH = ("havarti", PASSCODE)
HEADERS = (
    "Author: Ann Cheesemaker",
    "Author-email: Ann <ann@example.org>",
    "License: MIT License text",
    "License-Expression: MIT",
    "Classifier: Programming Language :: Python :: 3",
    "Classifier: Topic :: Food",
    "Project-URL: Homepage, https://example.org/rich",
    "Project-URL: Issues, https://example.org/rich/issues",
    "Keywords: cheese,dairy",
)
#: Every key a client may index in ``info`` (poetry, pip-audit, scripts).
INFO_KEYS = {"name", "version", "summary", "description", "requires_dist", "requires_python",
             "author", "author_email", "license", "license_expression", "classifiers",
             "project_urls", "keywords", "yanked", "yanked_reason", "home_page"}


def upload(server: HavartiServer, dist: dists.Dist) -> None:
    response = post_upload(server.url, dist, PASSCODE)
    assert response.status_code == 200, response.text


def get_json(server: HavartiServer, path: str) -> dict:
    response = httpx.get(f"{server.url}/pypi/{path}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_private_project_info_comes_from_its_core_metadata(server):
    wheel = dists.wheel("json-rich", "1.0", requires_python=">=3.9",
                        requires=("requests>=2", "click; extra == 'cli'"), headers=HEADERS,
                        summary="A rich cheese")
    sdist = dists.sdist("json-rich", "0.9", requires_python=">=3.8", summary="An older cheese",
                        headers=("Requires-Dist: lxml",))
    upload(server, wheel)
    upload(server, sdist)

    document = get_json(server, "json-rich/json")
    info = document["info"]
    assert INFO_KEYS <= set(info)
    assert info["name"] == "json-rich" and info["version"] == "1.0"
    assert info["summary"] == "A rich cheese"
    assert info["requires_dist"] == ["requests>=2", "click; extra == 'cli'"]
    assert info["requires_python"] == ">=3.9"
    assert info["author"] == "Ann Cheesemaker" and info["author_email"] == "Ann <ann@example.org>"
    assert info["license"] == "MIT License text" and info["license_expression"] == "MIT"
    assert info["classifiers"] == ["Programming Language :: Python :: 3", "Topic :: Food"]
    assert info["project_urls"] == {"Homepage": "https://example.org/rich",
                                    "Issues": "https://example.org/rich/issues"}
    assert info["keywords"] == "cheese,dairy"
    assert info["yanked"] is False and info["yanked_reason"] is None
    assert document["vulnerabilities"] == []
    assert set(document["releases"]) == {"1.0", "0.9"}
    assert [f["url"] for f in document["urls"]] == [file_url(server, "json-rich", wheel.filename)]

    # A version's own metadata: the sdist's PKG-INFO, read from inside the stored file.
    older = get_json(server, "json-rich/0.9/json")["info"]
    assert older["version"] == "0.9" and older["summary"] == "An older cheese"
    assert older["requires_dist"] == ["lxml"] and older["requires_python"] == ">=3.8"
    assert older["author"] is None and older["classifiers"] == []

    # Yanked: the version says so, and the project's document shows the newest one left.
    yanked = httpx.post(f"{server.url}/api/projects/json-rich/files/{wheel.filename}/yank",
                        json={"reason": "sour"}, auth=AUTH)
    assert yanked.status_code == 200, yanked.text
    info = get_json(server, "json-rich/1.0/json")["info"]
    assert info["yanked"] is True and info["yanked_reason"] == "sour"
    assert get_json(server, "json-rich/json")["info"]["version"] == "0.9"


def test_poetry_reads_a_private_project(server, tmp_path, monkeypatch):
    from poetry.core.constraints.version import Version
    from poetry.core.packages.dependency import Dependency
    from poetry.repositories.pypi_repository import PyPiRepository

    monkeypatch.setenv("POETRY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("POETRY_CACHE_DIR", str(tmp_path / "cache"))
    wheel = dists.wheel("json-poetry", "2.0", requires_python=">=3.8",
                        requires=("json-rich>=0.9",), summary="Read by poetry")
    upload(server, wheel)
    # fallback=False: poetry must not download the file to find what the JSON left out.
    repository = PyPiRepository(url=server.url + "/", disable_cache=True, fallback=False)
    package = repository.package("json-poetry", Version.parse("2.0"))
    assert package.description == "Read by poetry"
    assert [str(r) for r in package.requires] == ["json-rich (>=0.9)"]
    assert package.python_versions == ">=3.8"
    links = repository.find_links_for_package(package)
    assert [link.url_without_fragment for link in links] == [
        file_url(server, "json-poetry", wheel.filename)]
    assert links[0].hashes == {"sha256": wheel.sha256}
    found = repository.find_packages(Dependency("json-poetry", ">=1"))
    assert [str(p.version) for p in found] == ["2.0"]


def test_upstream_without_a_json_api_gets_a_document_from_the_simple_page(server, upstream):
    upstream.json_api_enabled = False
    one = dists.wheel("simple-only", "1.0", requires=("six",))
    two = dists.wheel("simple-only", "2.0", requires_python=">=3.10", requires=("attrs>=23",),
                      headers=("Author: Bea", "License-Expression: Apache-2.0"))
    upstream.publish("simple-only", one, "1.0")
    upstream.publish("simple-only", two, "2.0", requires_python=">=3.10")

    document = get_json(server, "simple-only/json")
    info = document["info"]
    assert INFO_KEYS <= set(info)
    assert info["version"] == "2.0" and info["requires_dist"] == ["attrs>=23"]
    assert info["requires_python"] == ">=3.10" and info["author"] == "Bea"
    assert info["license_expression"] == "Apache-2.0"
    assert document["vulnerabilities"] == []
    assert {v: [f["filename"] for f in files] for v, files in document["releases"].items()} == {
        "1.0": [one.filename], "2.0": [two.filename]}
    entry = document["urls"][0]
    assert entry["url"] == file_url(server, "simple-only", two.filename)
    assert entry["digests"]["sha256"] == two.sha256 and entry["packagetype"] == "bdist_wheel"
    assert entry["size"] == len(two.data) and entry["requires_python"] == ">=3.10"
    assert httpx.get(entry["url"]).content == two.data
    assert get_json(server, "simple-only/1.0/json")["info"]["requires_dist"] == ["six"]

    missing = httpx.get(f"{server.url}/pypi/simple-absent/json")
    assert_refused(missing, 404, "no project named 'simple-absent'")
    assert "upstream has no" not in missing.text
    assert_refused(httpx.get(f"{server.url}/pypi/simple-only/9.9/json"), 404, "no version '9.9'")


def test_poetry_reads_an_upstream_project_without_a_json_api(server, upstream, tmp_path,
                                                             monkeypatch):
    from poetry.core.constraints.version import Version
    from poetry.repositories.pypi_repository import PyPiRepository

    monkeypatch.setenv("POETRY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("POETRY_CACHE_DIR", str(tmp_path / "cache"))
    upstream.json_api_enabled = False
    wheel = dists.wheel("simple-poetry", "3.1", requires=("idna>=3",))
    upstream.publish("simple-poetry", wheel, "3.1")
    repository = PyPiRepository(url=server.url + "/", disable_cache=True, fallback=False)
    package = repository.package("simple-poetry", Version.parse("3.1"))
    assert [str(r) for r in package.requires] == ["idna (>=3)"]


def test_upstream_documents_carry_every_info_key(server, upstream):
    # The fake upstream's JSON API sends only name and version in info.
    upstream.publish("json-sparse", dists.wheel("json-sparse", "1.0"), "1.0")
    document = get_json(server, "json-sparse/json")
    assert INFO_KEYS <= set(document["info"])
    assert document["info"]["requires_dist"] is None
    assert document["vulnerabilities"] == []


def test_merged_project_adds_its_private_files(server, upstream):
    public = dists.wheel("json-merged", "2.0")
    upstream.publish("json-merged", public, "2.0")
    private = dists.wheel("json-merged", "1.0")
    upload(server, private)
    document = get_json(server, "json-merged/json")
    assert document["info"]["version"] == "2.0"
    assert {v: [f["url"] for f in files] for v, files in document["releases"].items()} == {
        "1.0": [file_url(server, "json-merged", private.filename)],
        "2.0": [file_url(server, "json-merged", public.filename)]}
    # A version only the private project has.
    assert [f["filename"] for f in get_json(server, "json-merged/1.0/json")["urls"]] == [
        private.filename]


@pytest.mark.parametrize("merge", [False, True])
def test_a_private_project_with_no_files_left_is_a_404(server, upstream, merge):
    name = "json-emptied-merged" if merge else "json-emptied"
    wheel = dists.wheel(name, "1.0")
    upload(server, wheel)
    if merge:
        assert httpx.post(f"{server.url}/api/projects/{name}/merge", auth=AUTH).status_code == 200
    deleted = httpx.delete(f"{server.url}/api/projects/{name}/files/{wheel.filename}", auth=AUTH)
    assert deleted.status_code == 200, deleted.text
    assert_refused(httpx.get(f"{server.url}/pypi/{name}/json"), 404, name)

