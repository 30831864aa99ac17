"""The bisect step's decision and git bisect's output, parsed (pure)."""

from __future__ import annotations

from lab.bisect.decide import BAD, GOOD, SKIP, Observation, first_signature, judge
from lab.bisect.git import parse
from lab.bisect.probe import run_signature

ORIG = "crash: WARNING in bisectmod_init"


def test_any_run_with_the_original_failure_is_bad() -> None:
    v = judge(ORIG, Observation(runs=(None, None, ORIG, None)))
    assert v.word == BAD and "1/4" in v.reason


def test_all_runs_passing_is_good() -> None:
    assert judge(ORIG, Observation(runs=(None, None))).word == GOOD


def test_a_different_failure_is_skipped_and_says_why() -> None:
    v = judge(ORIG, Observation(runs=(None, "crash: BUG: Bad page state")))
    assert v.word == SKIP
    assert "different failure" in v.reason and "Bad page state" in v.reason


def test_build_and_boot_failures_are_skipped() -> None:
    assert judge(ORIG, Observation(built=False, problem="error: x")).word == SKIP
    assert "does not boot" in judge(ORIG, Observation(booted=False, problem="p")).reason
    assert judge(ORIG, Observation(runs=())).word == SKIP


def test_the_bad_commits_signature_is_its_most_frequent_failure() -> None:
    assert first_signature((None, "a", "b", "b")) == "b"
    assert first_signature(("a", "b")) == "a"
    assert first_signature((None, None)) is None


def test_a_runs_signature_prefers_the_original_title() -> None:
    assert run_signature(["WARNING in x", "BUG: y"], "BUG: y") == "BUG: y"
    assert run_signature(["WARNING in x", "BUG: y"], None) == "WARNING in x"


def test_git_bisect_output_is_parsed() -> None:
    sha = "a" * 40
    done = parse(f"{sha} is the first bad commit\ncommit {sha}\n")
    assert done.finished and done.culprit == sha
    more = parse("Bisecting: 1 revision left to test after this (roughly 1 step)\n[bbb] x\n")
    assert not more.finished
    skipped = parse(
        "There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:\n"
        f"{sha}\n{'b' * 40}\nWe cannot bisect more!\n"
    )
    assert skipped.finished and skipped.culprit is None and len(skipped.candidates) == 2
