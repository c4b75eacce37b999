"""The upstream part of a page is stored rendered: a fresh process serves it as stored,
and never serves a rendering of older upstream data."""

from __future__ import annotations

import json
from pathlib import Path

from havarti.config import load_settings
from havarti.domain.index import PackageIndex
from havarti.wiring import build_index, prepare
from tests.support import dists
from tests.support.fakeindex import FakeIndex


def fresh_index(upstream: FakeIndex, data_dir: Path, ttl: str = "0") -> PackageIndex:
    settings = load_settings({"FALLBACK": upstream.url, "PACKAGE_CACHE": str(data_dir),
                              "INDEX_TTL": ttl})
    prepare(settings)
    return build_index(settings)


def test_a_new_process_serves_the_stored_rendering(upstream: FakeIndex, tmp_path: Path):
    for version in ("1.0", "1.1"):
        upstream.publish("stored", dists.wheel("stored", version), version)
    first = fresh_index(upstream, tmp_path)
    page = first.project_page("stored")
    first.close()

    second = fresh_index(upstream, tmp_path)
    again = second.project_page("stored")
    # Served from the stored rendering: the files were never parsed in this process.
    state = second.mirror.known("stored")
    assert state is not None and state.parsed is None
    assert "files" not in vars(state)
    assert again.html == page.html and again.json == page.json
    # The file records are still there when something asks for them (the UI, prefetch).
    assert sorted(f.version or "" for f in again.page.files) == ["1.0", "1.1"]
    second.close()


def test_a_rendering_of_older_upstream_data_is_not_served(upstream: FakeIndex, tmp_path: Path):
    upstream.publish("moving", dists.wheel("moving", "1.0"), "1.0")
    first = fresh_index(upstream, tmp_path)
    first.project_page("moving")
    first.close()

    upstream.publish("moving", dists.wheel("moving", "2.0"), "2.0")
    second = fresh_index(upstream, tmp_path)
    data = json.loads(second.project_page("moving").json)
    assert data["versions"] == ["1.0", "2.0"]
    second.close()

    third = fresh_index(upstream, tmp_path)
    assert json.loads(third.project_page("moving").json)["versions"] == ["1.0", "2.0"]
    third.close()
