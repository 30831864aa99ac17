"""Every bug reproducer witnesses its bug: run with `bug_mode` removed from its module parameters
(the correct module, everything else unchanged), each scenarios/bug-*.yaml reproducer must NOT
pass. One that passed anyway would prove nothing about the bug it names.

It must fail on its own expectation (a step's check, or the expected kernel report missing), not
on a lab error or a crash of the correct module. A reproducer that needs another kernel
(`requires:` debug_vm, kasan) is skipped with the runner's own reason, as the scenario is; run
this file with `--lab-kernel lab` or `--lab-kernel kasan` to cover those.

Arches: --arch (repeatable), else REMAPLAB_ARCHES, else both."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.kernel import KernelSpec
from lab.scenario.load import Loaded, load_file, load_text
from lab.scenario.runner import Outcome, VMPool, run_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
# bug-*.yaml files that reproduce no bug mode: they have no bug_mode to take away.
NOT_REPRODUCERS = {"bug-mode-load-only"}


def _reproducers() -> dict[str, Loaded]:
    found = {}
    for path in sorted(SCENARIOS.glob("bug-*.yaml")):
        if not path.stem.endswith("-twin") and path.stem not in NOT_REPRODUCERS:
            found[path.stem] = load_file(path)
    return found


REPRODUCERS = _reproducers()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target_arch" in metafunc.fixturenames:
        chosen = (
            metafunc.config.getoption("--arch", None)
            or os.environ.get("REMAPLAB_ARCHES", "x86_64 arm64").split()
        )
        metafunc.parametrize("target_arch", chosen, scope="module")


@pytest.fixture(scope="module")
def kernel_pool(request: pytest.FixtureRequest) -> Iterator[VMPool]:
    """Debian's kernel, or the lab-built one with --lab-kernel (one VM per arch, reused)."""
    lab = request.config.getoption("--lab-kernel", None)
    p = VMPool(KernelSpec(lab=lab)) if lab else VMPool()
    yield p
    p.close()


def bug_off(loaded: Loaded) -> Loaded:
    """The reproducer with bug_mode taken out of its module parameters, nothing else changed."""
    data = yaml.safe_load(loaded.text)
    del data["module"]["params"]["bug_mode"]
    data["name"] = f"{loaded.scenario.name}-bug-off"
    text = yaml.safe_dump(data, sort_keys=False)
    path = loaded.path.with_name(f"{data['name']}.yaml")
    return Loaded(load_text(text, path), path, text)


def test_reproducers_are_found() -> None:
    """Every non-twin bug-*.yaml is a reproducer with a bug_mode, or listed as none."""
    assert {"bug-uaf", "bug-nozap", "bug-noexpand", "bug-split-refcount"} <= set(REPRODUCERS)
    for name, loaded in REPRODUCERS.items():
        assert "bug_mode" in loaded.scenario.module.params, f"{name}: no bug_mode parameter"
    for name in NOT_REPRODUCERS:
        assert "bug_mode" not in load_file(SCENARIOS / f"{name}.yaml").scenario.module.params
    off = bug_off(REPRODUCERS["bug-nozap"]).scenario
    assert "bug_mode" not in off.module.params and off.module.params["fail_at"] == 3
    assert off.steps == REPRODUCERS["bug-nozap"].scenario.steps


@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_reproducer_fails_with_its_bug_off(
    kernel_pool: VMPool, target_arch: str, name: str, tmp_path: Path
) -> None:
    result = run_scenario(bug_off(REPRODUCERS[name]), target_arch, kernel_pool, tmp_path)
    if result.outcome == Outcome.SKIPPED:
        pytest.skip(result.message)
    assert result.outcome == Outcome.FAILED, result.render()
    own_expectation = result.failing_step is not None or result.message.startswith(
        "expected a kernel report"
    )
    assert own_expectation, result.render()
