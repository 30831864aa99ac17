"""The wheel ships everything the lab builds or reads at run time: module/, rootfs/ and
scenarios/ as lab/_tree/, lab/data/ whole, the pytest11 entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lab.paths import PACKAGE, source_tree

REPO = Path(__file__).resolve().parents[2]


def tracked(*folders: str) -> list[str]:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files to compare the wheel with")
    out = subprocess.run(
        ["git", "ls-files", *folders], capture_output=True, text=True, cwd=REPO, check=True
    )
    return out.stdout.split()


def test_checkout_is_the_source_tree_in_development() -> None:
    assert source_tree() == REPO and not (PACKAGE / "_tree").exists()


def test_wheel_holds_the_sources_the_lab_builds(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("remaplab-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read("remaplab-0.1.0.dist-info/entry_points.txt").decode()
    for path in tracked("module", "rootfs", "scenarios"):
        assert f"lab/_tree/{path}" in names, path
    for path in tracked("lab/data"):
        assert path in names, path
    assert "lab/data/include/remaplab.h" in names
    assert "lab/_tree/rootfs/init.c" in names  # compiled into the guest's /init at run time
    assert "[pytest11]\nremaplab = lab.pytest_plugin" in entry_points
    assert not [n for n in names if n.endswith((".o", ".ko", ".pyc"))]
