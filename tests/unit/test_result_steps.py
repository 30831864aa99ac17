"""Which step a kernel report came during: the last step begun at or before the report's start
on the console."""

from __future__ import annotations

from lab.scenario.result import StepRecord, during, step_at


def _steps() -> list[StepRecord]:
    return [
        StepRecord(0, "map", True, 0.1, console_at=1000),
        StepRecord(1, "check", True, 0.1, console_at=1500),
        StepRecord(2, "release", True, 0.1, console_at=None),  # no console: never chosen
    ]


def test_a_report_belongs_to_the_step_running_when_it_began() -> None:
    steps = _steps()
    assert step_at(steps, 999) is None  # before the first step: module load, boot
    first = step_at(steps, 1000)
    assert first is not None and first.index == 0
    assert step_at(steps, 1499) is first
    later = step_at(steps, 10**9)
    assert later is not None and later.index == 1


def test_during_names_the_step() -> None:
    assert during({"step": {"index": 0, "kind": "map"}}) == " (during step 0, map)"
    assert during({"step": None}) == "" and during({}) == ""
