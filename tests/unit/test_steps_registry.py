"""One registry of step kinds: every kind in the schema has exactly one executor."""

from __future__ import annotations

from pathlib import Path

from lab.scenario.load import load_text
from lab.scenario.schema import STEP_KINDS
from lab.scenario.steps import EXECUTORS


def test_every_step_kind_has_an_executor() -> None:
    assert set(EXECUTORS) == set(STEP_KINDS)


def test_step_kind_and_body_come_from_the_table() -> None:
    text = "name: d\ndescription: d\nsteps:\n" + "".join(
        f"  - {kind}: {{}}\n" for kind in STEP_KINDS if kind != "run"
    )
    s = load_text(text, Path("d.yaml"))
    for step, kind in zip(s.steps, [k for k in STEP_KINDS if k != "run"], strict=True):
        assert step.kind == kind
        assert isinstance(step.body, STEP_KINDS[kind])


def test_two_kinds_in_one_step_are_refused() -> None:
    import pytest

    from lab.scenario.load import ScenarioError

    with pytest.raises(ScenarioError, match=r"d.yaml:4: steps\[0\]: .*exactly one of run, map"):
        load_text(
            "name: d\ndescription: d\nsteps:\n  - {run: {command: x}, release: {}}\n",
            Path("d.yaml"),
        )
