"""A failed scenario leaves a self-contained repro bundle, and its repro.sh reruns it and says
whether the same crash came back (exit 0) or not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lab.scenario.load import load_file
from lab.scenario.runner import Outcome, VMPool, run_scenario

DATA = Path(__file__).resolve().parents[1] / "data"
pytestmark = pytest.mark.integration


def test_crash_leaves_a_bundle_that_reproduces(pool: VMPool, tmp_path: Path) -> None:
    loaded = load_file(DATA / "failing" / "refcount-unexpected.yaml")
    result = run_scenario(loaded, "x86_64", pool, tmp_path)
    assert result.outcome == Outcome.CRASH, result.render()
    assert result.crashes[0]["kind"] == "REFCOUNT"
    title = result.crashes[0]["title"]
    assert title.startswith("WARNING: refcount bug")
    bundle = tmp_path / "refcount-unexpected-x86_64" / "bundle"
    for name in (
        "refcount-unexpected.yaml",
        "kernel.json",
        "kernel.config",
        "qemu-argv.txt",
        "console.log",
        "crash-0.txt",
        "result.json",
        "repro.sh",
        "bin/multimap.ko",
        "bin/multimap-ctl",
        "bin/pagemap-dump",
    ):
        assert (bundle / name).is_file(), name
    kinfo = json.loads((bundle / "kernel.json").read_text())
    assert kinfo["arch"] == "x86_64" and "console=ttyS0" in kinfo["cmdline"]
    assert title in (bundle / "crash-0.txt").read_text()
    assert "refcount_t: underflow" in (bundle / "console.log").read_text()
    assert "repro.sh" in result.message

    rerun = subprocess.run(
        [str(bundle / "repro.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"rerun on {kinfo['identity']}: crash: {title}" in rerun.stdout
    assert rerun.stdout.splitlines()[-1].startswith("reproduced (the rerun")  # same kernel


def test_bundle_errors_are_clear(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [str(repo / ".venv" / "bin" / "remaplab"), "repro", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 125
    assert proc.stderr.strip() == (
        f"remaplab: {tmp_path} is not a repro bundle: result.json, kernel.json missing"
    )
