"""The test tree's layout: pytest imports test files by basename (no packages), so two test
files with one name in different folders break collection for the whole run."""

from __future__ import annotations

from collections import Counter

from lab.paths import REPO


def test_test_file_basenames_are_unique() -> None:
    names = Counter(p.name for p in (REPO / "tests").rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names.most_common(3)
