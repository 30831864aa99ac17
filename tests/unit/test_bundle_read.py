"""A repro bundle as `remaplab repro` reads it: a hand-edited, truncated or foreign bundle is
one line naming the file and the field, never a traceback (KeyError 'spec' and a list for
result.json both were)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.scenario.bundle import read_bundle, signature

REPO = Path(__file__).resolve().parents[2]
RESULT = {
    "scenario": "probe-wrongexp",
    "arch": "x86_64",
    "outcome": "failed",
    "failing_step": 1,
    "steps": [{"index": 1, "detail": "agreed PFNs: expected physically contiguous, got 16"}],
    "crashes": [],
}
KERNEL = {
    "arch": "x86_64",
    "identity": "debian linux-image-6.1.0-56-amd64 6.1.192-2",
    "key": "debian-6.1.0-56-amd64-6.1.192-2-v2",
    "spec": {"kernel_image": None, "kdir": None, "lab_kernel": None},
}


def _bundle(tmp_path: Path, result: object = RESULT, kernel: object = KERNEL) -> Path:
    b = tmp_path / "bundle"
    b.mkdir(exist_ok=True)
    (b / "result.json").write_text(json.dumps(result))
    (b / "kernel.json").write_text(json.dumps(kernel))
    (b / "probe-wrongexp.yaml").write_text("name: probe-wrongexp\n")
    return b


def test_a_whole_bundle_reads(tmp_path: Path) -> None:
    result, kinfo, yaml = read_bundle(_bundle(tmp_path))
    assert yaml.name == "probe-wrongexp.yaml" and kinfo["arch"] == "x86_64"
    assert signature(result).startswith("failed at step 1: agreed PFNs")


@pytest.mark.parametrize(
    ("result", "kernel", "says"),
    [
        ([1], KERNEL, "result.json: (top level): Input should be a valid dictionary"),
        ({**RESULT, "scenario": "../../etc/x"}, KERNEL, "result.json: scenario: String should"),
        ({**RESULT, "crashes": [{"t": 1}]}, KERNEL, "result.json: crashes.0.title: Field required"),
        ({**RESULT, "failing_step": "one"}, KERNEL, "result.json: failing_step:"),
        (RESULT, {"x": 1}, "kernel.json: arch: Field required"),
        (RESULT, {**KERNEL, "spec": None}, "kernel.json: spec: Input should be a valid dict"),
        (RESULT, {**KERNEL, "arch": "mips"}, "kernel.json: arch: 'mips' is no lab arch"),
    ],
)
def test_a_broken_bundle_names_the_file_and_field(
    tmp_path: Path, result: object, kernel: object, says: str
) -> None:
    with pytest.raises(LabError) as err:
        read_bundle(_bundle(tmp_path, result, kernel))
    assert says in str(err.value)


def test_a_truncated_file_is_named(tmp_path: Path) -> None:
    b = _bundle(tmp_path)
    (b / "kernel.json").write_text('{"arch": "x86_')
    with pytest.raises(LabError, match=r"kernel.json: not a readable JSON file"):
        read_bundle(b)


def test_a_reproduce_bundle_is_told_apart(tmp_path: Path) -> None:
    (tmp_path / "runs.json").write_text("[]")
    (tmp_path / "kernel.json").write_text(json.dumps(KERNEL))
    with pytest.raises(LabError, match=r"a `remaplab reproduce` bundle.*repro\.sh"):
        read_bundle(tmp_path)


def test_the_cli_says_it_in_one_line(tmp_path: Path) -> None:
    b = _bundle(tmp_path, kernel={"x": 1})
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "repro", str(b)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 125, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("kernel.json: arch: Field required")


def test_a_signature_names_the_step_only_for_a_failed_expectation() -> None:
    """A timeout, a hang, a lost or dead guest stay their outcome, as before steps were named
    for errors too: bundles made earlier still reproduce, and bisect does not split one hang
    into timing-dependent step messages."""
    lost = {**RESULT, "outcome": "lost connection", "failing_step": 2}
    assert signature(lost) == "lost connection"
    failed = {**RESULT, "steps": [{"index": 1, "detail": "step 1 (map) could not complete: x"}]}
    assert signature(failed) == "failed at step 1: step 1 (map) could not complete: x"
