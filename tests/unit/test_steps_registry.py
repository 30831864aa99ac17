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
        f"  - {kind}: {{}}\n" for kind in STEP_KINDS if kind not in ("run", "program")
    )
    s = load_text(text, Path("d.yaml"))
    kinds = [k for k in STEP_KINDS if k not in ("run", "program")]  # these need fields
    for step, kind in zip(s.steps, kinds, strict=True):
        assert step.kind == kind
        assert isinstance(step.body, STEP_KINDS[kind])


def test_two_kinds_in_one_step_are_refused() -> None:
    import pytest

    from lab.scenario.load import ScenarioError

    expected = r"d.yaml:4: steps\[0\]: .*exactly one of run, program, map"
    with pytest.raises(ScenarioError, match=expected):
        load_text(
            "name: d\ndescription: d\nsteps:\n  - {run: {command: x}, release: {}}\n",
            Path("d.yaml"),
        )
