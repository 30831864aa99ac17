"""The scenario runner end to end: a wrong expectation fails with a readable diff; the
guest-physical witness agrees with the module; a hanging command is a timeout and the run goes
on."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.scenario import runner
from lab.scenario.load import load_file, load_text
from lab.scenario.runner import Outcome, VMPool, run_scenario

DATA = Path(__file__).resolve().parents[1] / "data"


def test_wrong_contiguity_fails_with_diff(pool: VMPool, tmp_path: Path) -> None:
    loaded = load_file(DATA / "wrong" / "wrong-contiguity.yaml")
    result = run_scenario(loaded, "x86_64", pool, tmp_path)
    assert result.outcome == Outcome.FAILED
    assert result.failing_step == 1
    text = result.render()
    assert "expected physically contiguous" in text and "run(s)" in text
    assert "run 0: pfn 0x" in text
    assert (tmp_path / "wrong-contiguity-x86_64" / "result.json").exists()


def test_hanging_command_is_a_timeout_and_the_next_scenario_runs(
    pool: VMPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that runs out of time on a guest that still answers is a TIMEOUT, not a HANG.
    Whether the guest answers is the runner's probe (`true` over SSH, bounded): this guest
    does answer, so the bound only has to stop a broken run, and a loaded host that answers
    slowly must not turn the verdict into a hang (the hang case has its own test below)."""
    monkeypatch.setattr(runner, "PROBE_TIMEOUT_S", 120.0)
    hang = load_text(
        "name: hang\ndescription: d\nsteps:\n  - run: {command: 'sleep 60', timeout: 2}\n",
        Path("hang.yaml"),
    )
    from lab.scenario.load import Loaded

    result = run_scenario(Loaded(hang, Path("hang.yaml"), ""), "x86_64", pool, tmp_path)
    assert result.outcome == Outcome.TIMEOUT and "did not finish within 2 s" in result.message
    ok = load_text(
        "name: after\ndescription: d\nsteps:\n  - run: {command: 'echo ok', output: ok}\n",
        Path("after.yaml"),
    )
    after = run_scenario(Loaded(ok, Path("after.yaml"), ""), "x86_64", pool, tmp_path)
    assert after.outcome == Outcome.PASSED, after.render()


def test_physical_witness_agrees_with_module(pool: VMPool, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    loaded = load_file(repo / "scenarios" / "combo-pages-remap.yaml")
    result = run_scenario(loaded, "x86_64", pool, tmp_path)
    assert result.outcome == Outcome.PASSED, result.render()
    check = next(s for s in result.steps if s.kind == "check")
    assert check.evidence["physical_pfns"] == check.evidence["module_pfns"]


@pytest.mark.parametrize(
    ("name", "outcome", "evidence"),
    [
        ("panics", Outcome.CRASH, "kernel panic: sysrq triggered crash"),
        ("hangs", Outcome.HANG, "answers nothing over SSH"),
        ("loses", Outcome.LOST, "lost the SSH connection"),
    ],
)
def test_guest_faults_are_distinct_outcomes_and_the_next_runs_fresh(
    pool: VMPool, tmp_path: Path, name: str, outcome: Outcome, evidence: str
) -> None:
    """A guest that panics, hangs (suspended to idle: console silent, SSH dead) or loses its
    SSH connection: each its own outcome with the evidence; the next scenario gets a new VM."""
    result = run_scenario(load_file(DATA / "faults" / f"{name}.yaml"), "x86_64", pool, tmp_path)
    assert result.outcome == outcome, result.render()
    assert evidence in result.message
    assert (tmp_path / f"{name}-x86_64" / "bundle" / "repro.sh").exists()
    ok = load_text(
        "name: after\ndescription: d\nsteps:\n  - run: {command: 'echo ok', output: ok}\n",
        Path("after.yaml"),
    )
    from lab.scenario.load import Loaded

    after = run_scenario(Loaded(ok, Path("after.yaml"), ""), "x86_64", pool, tmp_path)
    assert after.outcome == Outcome.PASSED and after.booted, after.render()
