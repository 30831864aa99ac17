"""The verdict: from what a scenario run observed to (Outcome, message), as a pure function.

Every rule that tells a kernel crash from a guest hang, a lost connection, a timeout, a failed
expectation or an expected crash lives here, and is unit-tested on recorded evidence without a
VM.  The runner only observes; it never decides."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lab.crash import Report
from lab.scenario.result import Outcome
from lab.scenario.schema import Crash

EXPECTED_CRASH = "expected crash observed"


@dataclass(frozen=True)
class Observed:
    """Everything the verdict depends on, as the runner saw it."""

    expect: Literal["clean"] | Crash = "clean"
    reports: tuple[Report, ...] = ()  # new kernel reports on the console
    vm_alive: bool = True
    ssh_connected: bool = True
    boot_error: str | None = None  # the VM never became ready: why
    failed_step: tuple[int, str] | None = None  # (index, kind) of a step that failed
    failed_detail: str = ""  # that step's finding
    health: tuple[Outcome, str] | None = None  # a broken health rule (lab.scenario.health)
    timeout: str | None = None  # a step or the scenario ran out of time: the message
    unresponsive: str | None = None  # after a timeout: why the guest counts as hung
    error: str | None = None  # SSH broke, a guest tool failed, the guest went away: the message
    error_step: tuple[int, str] | None = None  # (index, kind) of the step the error ended
    cut_by_report: bool = False  # the error: a guest command stopped for a kernel report
    last_console_line: str = ""


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str


def expected_crash_seen(expect: Crash, reports: tuple[Report, ...]) -> bool:
    """Whether a report matches the expected kind (full regex) and title (search regex)."""
    return any(
        (not expect.kind or re.fullmatch(expect.kind, r.kind))
        and (not expect.title or re.search(expect.title, r.title))
        for r in reports
    )


def finding_line(detail: str, most: int = 200) -> str:
    """A step's finding in one line: its first, or a heading's (ending in ':') with the next."""
    lines = [ln.strip() for ln in detail.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:  # a heading: what it announces is the finding
        first = f"{first} {lines[1]}"
    return first if len(first) <= most else first[: most - 3] + "..."


def only_expected(expect: Literal["clean"] | Crash, reports: list[Report]) -> bool:
    """Whether every report so far is one the scenario expects (none, for a clean one)."""
    return isinstance(expect, Crash) and all(expected_crash_seen(expect, (r,)) for r in reports)


def _before_reports(o: Observed) -> Verdict:
    """What the steps, the health check and any error say, before the console is read."""
    verdict = Verdict(Outcome.PASSED, "")
    if o.failed_step is not None:
        index, kind = o.failed_step
        said = finding_line(o.failed_detail)
        verdict = Verdict(
            Outcome.FAILED, f"step {index} ({kind}) failed" + (f": {said}" if said else "")
        )
    elif o.health is not None:
        verdict = Verdict(*o.health)
    if o.timeout is not None:
        if o.unresponsive:
            return Verdict(Outcome.HANG, f"{o.timeout}; {o.unresponsive}")
        return Verdict(Outcome.TIMEOUT, o.timeout)
    if o.error is not None:
        if o.cut_by_report:  # the report decides (a crash, or the expected one)
            where = f" during step {o.error_step[0]} ({o.error_step[1]})" if o.error_step else ""
            return Verdict(Outcome.CRASH, f"a kernel report stopped a guest command{where}")
        if not o.vm_alive:
            return Verdict(Outcome.CRASH, f"the guest died: {o.error}")
        if not o.ssh_connected:
            return Verdict(
                Outcome.LOST,
                f"lost the SSH connection to the guest ({o.error}); QEMU still runs; "
                f"last console line: {o.last_console_line!r}",
            )
        if o.error_step is not None:  # a guest tool or the guest's shell gave out in a step
            index, kind = o.error_step
            return Verdict(Outcome.FAILED, f"step {index} ({kind}) could not complete: {o.error}")
        return Verdict(Outcome.FAILED, f"lab error: {o.error}")
    return verdict


def _with_expected(o: Observed, expect: Crash, verdict: Verdict) -> Verdict:
    """The verdict of a scenario whose expected report came."""
    if o.cut_by_report:  # a report it does not expect stopped a command: that one decides
        other = next((r for r in o.reports if not expected_crash_seen(expect, (r,))), None)
        if other is not None:
            return Verdict(Outcome.CRASH, f"kernel report: {other.title} (not the one expected)")
    # The expected crash may take the guest (and so the step) down with it, or leave the
    # task that oopsed (and whatever waits on its locks) hanging until a command's timeout.
    if verdict.outcome in (Outcome.CRASH, Outcome.FAILED) and not o.vm_alive:
        return Verdict(Outcome.PASSED, EXPECTED_CRASH)
    if verdict.outcome in (Outcome.TIMEOUT, Outcome.HANG):  # a run ends at a timeout
        return Verdict(
            Outcome.PASSED,
            f"{EXPECTED_CRASH}; then {verdict.message} (the scenario ended there: no later "
            "step, module unload or health check ran)",
        )
    if verdict.outcome == Outcome.PASSED:
        return Verdict(Outcome.PASSED, EXPECTED_CRASH)
    return verdict


def decide(o: Observed) -> Verdict:
    if o.boot_error is not None:
        return Verdict(Outcome.BOOT_FAILURE, o.boot_error)
    verdict = _before_reports(o)
    if isinstance(o.expect, Crash):
        if expected_crash_seen(o.expect, o.reports):
            return _with_expected(o, o.expect, verdict)
        if verdict.outcome == Outcome.PASSED or o.cut_by_report:
            wanted = " ".join(x for x in (o.expect.kind, o.expect.title) if x)
            if o.reports:  # reports came, just not the one expected: say which
                seen = "; ".join(f"{r.title} (kind {r.kind})" for r in o.reports)
                return Verdict(
                    Outcome.FAILED, f"expected a kernel report ({wanted}), saw another: {seen}"
                )
            return Verdict(Outcome.FAILED, f"expected a kernel report ({wanted}), none seen")
        return verdict
    if o.reports:
        return Verdict(Outcome.CRASH, f"kernel report: {o.reports[0].title}")
    return verdict
