"""tests/data holds copies of ../shared/fixtures and ../shared/ari (a user's clone has no
../shared): where the originals are beside the clone, the copies must not have drifted.

It lives with the live suite because, like it, it needs the real-Asterisk material beside the
clone (CI's case); the default suite never reads ../shared."""

from __future__ import annotations

import filecmp

import pytest

from tests.support import ARI, FIXTURES, ROOT

SHARED = ROOT.parent / "shared"
pytestmark = pytest.mark.live


def _differences(left, right) -> list[str]:
    cmp = filecmp.dircmp(left, right)
    found = [f"{left}/{n}" for n in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files]
    for sub in cmp.common_dirs:
        found += _differences(left / sub, right / sub)
    return found


@pytest.mark.parametrize("name, copy", [("fixtures", FIXTURES), ("ari", ARI)])
def test_copies_match_shared(name, copy):
    original = SHARED / name
    if not original.is_dir():
        pytest.skip(f"no {original} beside this clone to compare with")
    assert _differences(original, copy) == []
