"""pytest -n N: scenario items run on N worker processes, each writing only its own item's
results folder; --keep-vm (which holds VMs until Ctrl-C) is refused under -n.  Items here are
skipped before any kernel is prepared (a scenario for arm64 run on x86_64): no VM boots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCENARIO = "name: {name}\ndescription: d\narches: [arm64]\nsteps:\n  - run: {{command: 'true'}}\n"
NAMES = [f"s{i}" for i in range(6)]


def project(tmp_path: Path) -> Path:
    (tmp_path / "scenarios").mkdir()
    for name in NAMES:
        (tmp_path / "scenarios" / f"{name}.yaml").write_text(SCENARIO.format(name=name))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tmp_path


def pytest_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMAPLAB_CACHE": str(root / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args],
        capture_output=True, text=True, cwd=root, timeout=300, env=env,
    )  # fmt: skip


def test_two_workers_each_item_its_own_folder(tmp_path: Path) -> None:
    root = project(tmp_path)
    res = pytest_run(root, "-n", "2", "-v", "--arch", "x86_64")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "6 skipped" in res.stdout and "scenario is for arm64" in res.stdout, res.stdout
    assert "[gw0]" in res.stdout and "[gw1]" in res.stdout, res.stdout
    for name in NAMES:
        result = json.loads((root / "results/pytest" / f"{name}-x86_64/result.json").read_text())
        assert (result["scenario"], result["outcome"]) == (name, "skipped")


def test_keep_vm_is_refused_under_xdist(tmp_path: Path) -> None:
    res = pytest_run(project(tmp_path), "-n", "2", "--keep-vm")
    assert res.returncode == 4, res.stdout + res.stderr
    assert "--keep-vm" in res.stderr and "without -n" in res.stderr
    assert "Traceback" not in res.stderr
