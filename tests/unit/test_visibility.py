"""The one shadowing rule: a private project's own merge/shadow choice, else UPSTREAM_MERGE."""

from __future__ import annotations

import pytest

from havarti.domain.visibility import MERGE, SHADOW, Visibility
from havarti.records import CACHED, PRIVATE, UPSTREAM


def rules(private: bool, mode: str | None, merge: frozenset[str] = frozenset()) -> Visibility:
    return Visibility.of("brie", private, merge, None, frozenset(), mode=mode)


@pytest.mark.parametrize("private, mode, merge, upstream_shown", [
    (False, None, frozenset(), True),                 # not private: nothing to shadow
    (True, None, frozenset(), False),                 # private: shadows by default
    (True, None, frozenset({"brie"}), True),          # UPSTREAM_MERGE, the start-up default
    (True, MERGE, frozenset(), True),                 # merged at runtime
    (True, SHADOW, frozenset({"brie"}), False),       # shadowed at runtime, despite UPSTREAM_MERGE
])
def test_own_choice_wins_over_upstream_merge(private, mode, merge, upstream_shown):
    visibility = rules(private, mode, merge)
    assert visibility.upstream is upstream_shown
    assert visibility.shadows is (private and not upstream_shown)
    # Private files always show; upstream and cached ones only when upstream is shown.
    assert visibility.shows(PRIVATE)
    assert visibility.shows(CACHED) is upstream_shown
    assert visibility.shows(UPSTREAM) is upstream_shown
