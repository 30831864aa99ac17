"""pytest -n N: scenario items run on N worker processes, each writing only its own item's
results folder; --keep-vm (which holds VMs until Ctrl-C) is refused under -n.  Items here are
skipped before any kernel is prepared (a scenario for arm64 run on x86_64): no VM boots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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


class FakeConfig:
    def __init__(self, root: Path) -> None:
        self.rootpath = root
        self.args: list[str] = []  # no file named on the command line
        self.invocation_params = SimpleNamespace(dir=root)

    def getini(self, name: str) -> list[Path]:
        return []


def test_work_units_are_one_arch_and_boot_setting(tmp_path: Path) -> None:
    from lab.xdist_scopes import scenario_scopes

    (tmp_path / "scenarios").mkdir()
    for name in ("a", "b", "c"):
        text = SCENARIO.format(name=name).replace("arches: [arm64]\n", "")
        if name == "c":
            text += "boot: {memory: 2G}\n"
        (tmp_path / "scenarios" / f"{name}.yaml").write_text(text)
    ids = [f"scenarios/{n}.yaml::{n}[{a}]" for n in "abc" for a in ("x86_64", "arm64")]
    config: Any = FakeConfig(tmp_path)
    scopes = scenario_scopes(config, [*ids, "tests/unit/test_x.py::test_y[1]"], workers=2)
    assert set(scopes) == set(ids)  # not the other test
    x86 = {n: scopes[f"scenarios/{n}.yaml::{n}[x86_64]"] for n in "abc"}
    assert x86["a"] == x86["b"] != x86["c"]
    assert x86["a"] != scopes["scenarios/a.yaml::a[arm64]"]
    assert len(set(scenario_scopes(config, ids, workers=6).values())) == 6  # split to feed all


def test_a_module_stays_in_one_worker(tmp_path: Path) -> None:
    """Its module-scoped fixtures (a booted VM in tests/integration) are set up once: pytest 9
    keeps xdist 3.8 from renaming node ids, so xdist_group marks alone would not do it."""
    root = project(tmp_path)
    for mod in ("one", "two"):
        (root / f"test_{mod}.py").write_text(
            "import pytest\n\n@pytest.mark.parametrize('i', range(4))\ndef test_x(i):\n    pass\n"
        )
    res = pytest_run(root, "-n", "2", "-v", "--arch", "x86_64")
    assert res.returncode == 0, res.stdout + res.stderr
    workers: dict[str, set[str]] = {}
    for line in res.stdout.splitlines():
        if line.startswith("[gw") and "test_x[" in line:
            module = line.split()[-1].split("::")[0]
            workers.setdefault(module, set()).add(line.split()[0])
    assert set(workers) == {"test_one.py", "test_two.py"}, res.stdout
    assert all(len(w) == 1 for w in workers.values()), workers
