"""Every outcome of the verdict, decided from recorded evidence without a VM."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.crash import Report, find_reports
from lab.scenario.result import Outcome
from lab.scenario.schema import Crash
from lab.scenario.verdict import EXPECTED_CRASH, Observed, Verdict, decide, only_expected

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def bad_page() -> tuple[Report, ...]:
    """The reports in a console recorded when multimap freed a page still mapped."""
    reports = find_reports((DATA / "multimap-bad-page.log").read_text())
    assert reports
    return tuple(reports)


def test_clean_run_passes() -> None:
    assert decide(Observed()).outcome == Outcome.PASSED


def test_boot_failure_wins_over_everything(bad_page: tuple[Report, ...]) -> None:
    v = decide(Observed(boot_error="x86_64 guest did not boot: ...", reports=bad_page))
    assert v.outcome == Outcome.BOOT_FAILURE and "did not boot" in v.message


def test_failed_step_is_a_failure() -> None:
    v = decide(Observed(failed_step=(2, "check")))
    assert (v.outcome, v.message) == (Outcome.FAILED, "step 2 (check) failed")


def test_health_problem_is_the_verdict() -> None:
    v = decide(Observed(health=(Outcome.CRASH, "kernel newly tainted: W")))
    assert (v.outcome, v.message) == (Outcome.CRASH, "kernel newly tainted: W")


def test_unexpected_crash_report_fails_a_passing_run(bad_page: tuple[Report, ...]) -> None:
    v = decide(Observed(reports=bad_page))
    assert v.outcome == Outcome.CRASH
    assert v.message == f"kernel report: {bad_page[0].title}"
    assert "Bad page state" in v.message


def test_crash_report_overrides_a_failed_step(bad_page: tuple[Report, ...]) -> None:
    v = decide(Observed(failed_step=(1, "map"), reports=bad_page))
    assert v.outcome == Outcome.CRASH


def test_guest_died_under_a_step() -> None:
    v = decide(Observed(error="Socket is closed", vm_alive=False, ssh_connected=False))
    assert v.outcome == Outcome.CRASH and v.message == "the guest died: Socket is closed"


def test_lost_connection_while_qemu_runs() -> None:
    v = decide(
        Observed(error="EOFError", ssh_connected=False, last_console_line="[ 9.1] dropbear exited")
    )
    assert v.outcome == Outcome.LOST
    assert "QEMU still runs" in v.message and "dropbear exited" in v.message


def test_lab_error_with_a_healthy_guest_is_a_failure() -> None:
    v = decide(Observed(error="multimap-ctl printed no JSON (exit 1)"))
    assert (v.outcome, v.message) == (
        Outcome.FAILED,
        "lab error: multimap-ctl printed no JSON (exit 1)",
    )


def test_timeout_with_a_guest_that_answers() -> None:
    v = decide(Observed(timeout="step timed out after 60 s"))
    assert (v.outcome, v.message) == (Outcome.TIMEOUT, "step timed out after 60 s")


def test_timeout_with_a_silent_guest_is_a_hang() -> None:
    why = "the guest answers nothing over SSH within 5 s and its console has been silent"
    v = decide(Observed(timeout="step timed out after 60 s", unresponsive=why))
    assert v.outcome == Outcome.HANG and why in v.message


def test_hang_with_a_report_is_a_crash(bad_page: tuple[Report, ...]) -> None:
    v = decide(Observed(timeout="t", unresponsive="silent", reports=bad_page))
    assert v.outcome == Outcome.CRASH


def test_expected_crash_that_killed_the_guest_passes(bad_page: tuple[Report, ...]) -> None:
    expect = Crash(kind="BAD_PAGE", title="Bad page state")
    v = decide(Observed(expect=expect, reports=bad_page, error="EOF", vm_alive=False))
    assert (v.outcome, v.message) == (Outcome.PASSED, EXPECTED_CRASH)


def test_expected_crash_with_the_guest_alive_passes(bad_page: tuple[Report, ...]) -> None:
    v = decide(Observed(expect=Crash(title="Bad page"), reports=bad_page))
    assert (v.outcome, v.message) == (Outcome.PASSED, EXPECTED_CRASH)


def test_expected_crash_does_not_excuse_a_failed_step_on_a_live_guest(
    bad_page: tuple[Report, ...],
) -> None:
    v = decide(Observed(expect=Crash(title="Bad page"), reports=bad_page, failed_step=(0, "run")))
    assert v.outcome == Outcome.FAILED


def test_expected_crash_not_seen_fails() -> None:
    v = decide(Observed(expect=Crash(kind="KASAN", title="use-after-free")))
    assert v.outcome == Outcome.FAILED
    assert v.message == "expected a kernel report (KASAN use-after-free), none seen"


def test_a_different_crash_than_expected_fails(bad_page: tuple[Report, ...]) -> None:
    v = decide(Observed(expect=Crash(kind="KASAN"), reports=bad_page))
    assert v.outcome == Outcome.FAILED
    assert v.message.startswith("expected a kernel report (KASAN), saw another: ")
    assert f"{bad_page[0].title} (kind {bad_page[0].kind})" in v.message


def test_expected_kind_is_a_full_match(bad_page: tuple[Report, ...]) -> None:
    kind = bad_page[0].kind
    assert decide(Observed(expect=Crash(kind=kind[:-1]), reports=bad_page)).outcome == (
        Outcome.FAILED
    )
    assert decide(Observed(expect=Crash(kind=f"{kind}|KASAN"), reports=bad_page)).outcome == (
        Outcome.PASSED
    )


def test_a_tool_that_gave_out_in_a_step_names_the_step_not_the_lab() -> None:
    """A user's driver got the holder SIGKILLed in the map step: the step could not complete,
    no 'lab error' (a helper's foreign driver was reported so, failing_step null)."""
    error = "remaplab-map --hold printed no report: exited with status 137 (killed by SIGKILL)"
    v = decide(Observed(error=error, error_step=(0, "map")))
    assert v == Verdict(Outcome.FAILED, f"step 0 (map) could not complete: {error}")


def test_a_command_stopped_by_an_unexpected_report_is_that_crash(
    bad_page: tuple[Report, ...],
) -> None:
    """lab.watch.step_interrupt stops a guest command once a report is complete (an oopsed task
    holding the mmap lock never lets it return): the report is the verdict, at once."""
    o = Observed(reports=bad_page, error="stopped", error_step=(2, "map"), cut_by_report=True)
    v = decide(o)
    assert (v.outcome, v.message) == (Outcome.CRASH, f"kernel report: {bad_page[0].title}")


def test_an_expected_crash_excuses_the_timeout_it_left_behind(
    bad_page: tuple[Report, ...],
) -> None:
    """The task that oopsed (and whatever waits on its locks) may keep a later command from
    ever returning: the expected crash came, the timeout after it is its doing, and said."""
    expect = Crash(kind="BAD_PAGE")
    o = Observed(expect=expect, reports=bad_page, timeout="step 1 (release) timed out")
    v = decide(o)
    assert (v.outcome, v.message) == (
        Outcome.PASSED,
        f"{EXPECTED_CRASH}; then step 1 (release) timed out (the scenario ended there: no "
        "later step, module unload or health check ran)",
    )
    # a guest tool's own error on a live guest after the expected crash still fails
    plain = Observed(expect=expect, reports=bad_page, error="tool died", error_step=(1, "run"))
    assert decide(plain).outcome == Outcome.FAILED


def test_an_unexpected_report_after_the_expected_one_is_a_crash(
    bad_page: tuple[Report, ...],
) -> None:
    """lab.watch.step_interrupt stops a command only for a report the scenario does not expect:
    when it did, that report decides, even after the expected one came."""
    other = find_reports(
        "BUG: KASAN: use-after-free in mydrv_read+0x1/0x2\nRead of size 8 at addr 0 by task x/1\n"
    )
    assert other
    expect = Crash(kind="BAD_PAGE")
    o = Observed(expect=expect, reports=(*bad_page, *other), error="stopped", cut_by_report=True)
    v = decide(o)
    assert v.outcome == Outcome.CRASH
    assert v.message == f"kernel report: {other[0].title} (not the one expected)"


def test_a_command_stopped_by_another_report_than_the_expected_one_says_which(
    bad_page: tuple[Report, ...],
) -> None:
    o = Observed(expect=Crash(kind="KASAN"), reports=bad_page, error="stopped", cut_by_report=True)
    v = decide(o)
    assert v.outcome == Outcome.FAILED
    assert v.message.startswith("expected a kernel report (KASAN), saw another: ")


def test_a_failed_step_names_its_finding_in_the_message() -> None:
    v = decide(Observed(failed_step=(3, "check"), failed_detail="pages differ:\n  page 4: x\n"))
    assert v.message == "step 3 (check) failed: pages differ: page 4: x"
    long = decide(Observed(failed_step=(0, "run"), failed_detail="y" * 500))
    assert long.message.endswith("...") and len(long.message) < 240


def test_only_expected_reports_let_commands_run_on(bad_page: tuple[Report, ...]) -> None:
    assert only_expected(Crash(kind="BAD_PAGE"), list(bad_page))
    assert not only_expected(Crash(kind="KASAN"), list(bad_page))
    assert not only_expected("clean", list(bad_page))
