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


def test_quiet_steps_share_a_mark_and_the_last_begun_is_running() -> None:
    """Steps rarely print: three at one console length; a report after it is the third's."""
    steps = [StepRecord(i, "run", True, 0.1, console_at=1000) for i in range(3)]
    found = step_at(steps, 1050)
    assert found is not None and found.index == 2


def test_a_report_after_the_steps_is_no_steps() -> None:
    """Release, unload and the health check run after the steps (a Bad page state at rmmod)."""
    assert step_at(_steps(), 2000, end=2000) is None
    found = step_at(_steps(), 1999, end=2000)
    assert found is not None and found.index == 1


def test_during_names_the_step() -> None:
    assert during({"step": {"index": 0, "kind": "map"}}) == " (during step 0, map)"
    assert during({"step": None, "after_steps": True}) == " (after the steps)"
    assert during({"step": None}) == "" and during({}) == ""


def test_a_terminal_gets_the_evidence_in_one_cut_line() -> None:
    """remaplab run's terminal: one line of evidence and where the whole of it is; JUnit and
    pytest keep the indented JSON."""
    from lab.scenario.result import BRIEF_EVIDENCE, Outcome, Result, StepRecord

    evidence = {"pages": [{"index": i, "pfn": 0x6A0C} for i in range(64)]}
    step = StepRecord(0, "check", False, 0.1, "pages repeat", evidence)
    r = Result("s", "x86_64", Outcome.FAILED, failing_step=0, steps=[step], log_dir="results/r/s")
    brief = r.render(brief=True)
    line = next(ln for ln in brief.splitlines() if ln.startswith("evidence: "))
    assert line.endswith("... (all of it: results/r/s/result.json)")
    assert len(line) < BRIEF_EVIDENCE + 80 and len(brief.splitlines()) <= 5
    assert len(r.render().splitlines()) > 20
