"""pytest -n 2 runs scenario items on two workers, each with its own VM (no shared socket, port,
RAM file or results folder), with the same verdicts as a serial run of the same items."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.paths import REPO

# Two that pass on Debian's x86_64 kernel, one skipped there (no CMA), one more that passes.
NAMES = ["combo-pages-remap", "lifecycle-fork", "contig-source-cma", "combo-vmalloc-insert"]
TIMEOUT_S = 900.0

pytestmark = pytest.mark.integration


def project(root: Path) -> Path:
    (root / "scenarios").mkdir(parents=True)
    for name in NAMES:
        shutil.copy(REPO / "scenarios" / f"{name}.yaml", root / "scenarios")
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


def verdicts(root: Path, *args: str) -> tuple[dict[str, str], str]:
    junit = root / "junit.xml"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "--arch", "x86_64",
         f"--junitxml={junit}", *args],
        capture_output=True, text=True, cwd=root, timeout=TIMEOUT_S, env=dict(os.environ),
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stdout + res.stderr
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kind = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        out[case.get("name", "")] = kind
    return out, res.stdout


def test_two_workers_same_verdicts_as_serial(tmp_path: Path) -> None:
    serial, _ = verdicts(project(tmp_path / "serial"))
    parallel_root = project(tmp_path / "parallel")
    parallel, stdout = verdicts(parallel_root, "-n", "2")
    assert parallel == serial, (serial, parallel)
    assert len(serial) == len(NAMES) and serial["combo-pages-remap[x86_64]"] == "passed"
    assert "[gw0]" in stdout and "[gw1]" in stdout, stdout  # both workers ran items
    for name in NAMES:
        assert (parallel_root / "results/pytest" / f"{name}-x86_64" / "result.json").is_file()
