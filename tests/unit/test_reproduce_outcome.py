"""Counting a reproducer's runs: titles, --title filtering, the summary line (pure)."""

from __future__ import annotations

import re

from lab.reproduce.outcome import CRASH, NO_CRASH, TIMED_OUT, RunRecord, summarize


def _runs() -> list[RunRecord]:
    return [
        RunRecord(1, 1, "fresh", CRASH, ["WARNING in foo", "WARNING in foo"]),
        RunRecord(2, 2, "fresh", NO_CRASH, status=0),
        RunRecord(3, 1, "fresh", CRASH, ["KASAN: use-after-free Read in bar"]),
        RunRecord(4, 2, "reused", TIMED_OUT),
    ]


def test_summary_counts_runs_and_titles() -> None:
    s = summarize(_runs(), None)
    assert (s.runs, s.crashed, s.reproduced) == (4, 2, True)
    assert s.titles == {"WARNING in foo": 1, "KASAN: use-after-free Read in bar": 1}
    assert s.lines()[0] == "reproduced 2/4: WARNING in foo"
    assert s.outcomes[TIMED_OUT] == 1


def test_title_filter_counts_only_matching_crashes() -> None:
    s = summarize(_runs(), re.compile("KASAN"))
    assert s.crashed == 1 and s.title == "KASAN: use-after-free Read in bar"
    assert any("does not match --title" in line for line in s.lines())
    none = summarize(_runs(), re.compile("nothing"))
    assert not none.reproduced and none.lines()[0].startswith("not reproduced 0/4")


def test_a_run_record_reads_as_one_line() -> None:
    line = _runs()[3].line(4)
    assert line.startswith("run 4/4 (vm 2, reused guest") and TIMED_OUT in line
    # one report per page of a mapping: each title once, counted
    assert _runs()[0].line(4).endswith(f"{CRASH}: WARNING in foo (x2)")


def test_a_run_says_why_the_next_gets_a_fresh_guest() -> None:
    """A clean run on a guest whose taint changed (an unsigned out-of-tree module loaded: O
    and E) is not reused, and its line says so."""
    from lab.reproduce.outcome import NO_CRASH, RunRecord
    from lab.scenario.oracles import taint_letters as _taint_letters

    assert _taint_letters("12288") == " (O, E)" and _taint_letters("0") == ""
    assert _taint_letters("512") == " (W)" and _taint_letters("x") == ""
    record = RunRecord(1, 1, "fresh", NO_CRASH, status=0, seconds=1.0)
    record.next_guest = "not reused: the kernel's taint changed from 0 to 12288 (O, E)"
    line = record.line(2)
    assert line.endswith("; guest not reused: the kernel's taint changed from 0 to 12288 (O, E)")
    assert record.as_dict()["next_guest"] == record.next_guest
