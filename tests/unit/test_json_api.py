"""``info`` of the JSON API from core metadata: every key a client indexes, always."""

from __future__ import annotations

from havarti.domain.json_api import INFO_DEFAULTS, info_from_metadata
from tests.support.dists import core_metadata


def test_every_field_is_copied_as_pypi_shows_it():
    raw = core_metadata("brie", "1.0", ">=3.9", ("a>=1", "b; extra == 'x'"), summary="Soft",
                        description="# Brie", description_content_type="text/markdown",
                        headers=("Author: Ann", "Maintainer: Bo", "License-Expression: MIT",
                                 "Keywords: soft,french", "Classifier: Topic :: Food",
                                 "Project-URL: Source, https://example.org/brie",
                                 "Home-page: https://example.org", "Provides-Extra: x"))
    info = info_from_metadata(raw)
    assert info["name"] == "brie" and info["version"] == "1.0"
    assert info["requires_dist"] == ["a>=1", "b; extra == 'x'"]
    assert info["requires_python"] == ">=3.9" and info["summary"] == "Soft"
    assert info["description"] == "# Brie" and info["description_content_type"] == "text/markdown"
    assert info["author"] == "Ann" and info["maintainer"] == "Bo"
    assert info["license_expression"] == "MIT" and info["keywords"] == "soft,french"
    assert info["classifiers"] == ["Topic :: Food"]
    assert info["project_urls"] == {"Source": "https://example.org/brie"}
    assert info["home_page"] == "https://example.org" and info["provides_extra"] == ["x"]


def test_missing_or_unreadable_metadata_gives_pypis_defaults():
    for raw in (None, b"", b"\xff\xfe not metadata \x00"):
        info = info_from_metadata(raw)
        assert set(info) == set(INFO_DEFAULTS)
        assert info["requires_dist"] is None and info["classifiers"] == []
        assert info["yanked"] is False
    # Defaults are copies: one document's change never leaks into the next.
    info_from_metadata(None)["classifiers"].append("x")
    assert info_from_metadata(None)["classifiers"] == []
