"""Watching the guest's console while a user's command or shell runs: the kernel's reports as
they complete, and the guest's death (QEMU exited, e.g. after a panic), so a crash ends the wait
at once instead of after the command's whole timeout."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import paramiko

from lab.console import Console, ConsoleEOF, ConsoleFailure
from lab.crash import Report, could_start_report, find_reports
from lab.errors import LabError

QUIET_S = 1.0  # a report is complete once the console has been silent this long after it
LIMIT_S = 5.0  # ... or this long after it began, whatever is still printing
GUEST_DIED = "the guest died (QEMU exited)"
SYNC_S = 2.0  # for the sync line to reach the console (it takes milliseconds)


def sync_console(console: Console, run: Callable[[str, float], Any]) -> bool:
    """Once this returns True, every kernel message printed before the call is in the host's
    console log: a line written to /dev/kmsg at level 0 (shown at any console log level) comes
    out after every earlier record, as printk prints its records in order.  Without it, a
    report printed just before a command's end could reach the host after the command's status
    (SSH and the serial port are separate paths) and be missed or counted to the next step.
    False, after at most ~2 x SYNC_S, when the guest could not write the line (no SSH, a hung
    guest) or the console did not show it."""
    token = secrets.token_hex(6)
    mark = console.mark()
    try:
        result = run(f"echo '<0>remaplab: console sync {token}' > /dev/kmsg", SYNC_S)
        if not result.ok:
            return False
        console.wait_for(re.escape(token), SYNC_S, "the console sync line", start=mark)
    except (LabError, OSError, EOFError, paramiko.SSHException, ConsoleEOF, ConsoleFailure):
        return False  # the guest died meanwhile: whatever reached the console is all there is
    return True


class KernelWatch:
    """Kernel reports on a live console since offset mark, and whether the guest died."""

    def __init__(
        self, console: Console, mark: int, quiet: float = QUIET_S, limit: float = LIMIT_S
    ) -> None:
        self.console = console
        self.mark = mark
        self.quiet = quiet
        self.limit = limit
        self.reports: list[Report] = []
        self._first_seen: float | None = None  # when the first report was seen
        self._quiet_to = 0  # the text (from mark) up to here holds no line that starts a report
        self._scanned_at = -1.0  # console.last_output when the text was last scanned
        self._handed_out = 0

    def _scan(self) -> None:
        last = self.console.last_output
        if last == self._scanned_at:
            return  # nothing new on the console
        self._scanned_at = last
        text = self.console.text(self.mark)
        end = text.rfind("\n") + 1  # complete lines: no report can start in them later
        # Until a report begins, only the new complete lines are looked at, with the table's
        # quick filter: a chatty driver's console is not parsed whole at every poll.
        if not self.reports and not could_start_report(text[self._quiet_to : end]):
            self._quiet_to = end
            return
        self.reports = find_reports(text, after_boot=True)
        if not self.reports:
            self._quiet_to = end  # the filter's line was none after all
        if self.reports and self._first_seen is None:
            self._first_seen = time.monotonic()

    def complete(self) -> bool:
        """True once a report has begun and the console has since been quiet for `quiet`
        seconds (or `limit` seconds have passed, or QEMU exited)."""
        self._scan()
        if self._first_seen is None:
            return False
        now = time.monotonic()
        return (
            self.console.eof
            or now - self.console.last_output >= self.quiet
            or now - self._first_seen >= self.limit
        )

    def stop_reason(self) -> str | None:
        """For a command: why to stop waiting for it (the guest died, or a kernel report is
        complete while it still runs), or None."""
        if self.console.eof:
            return GUEST_DIED
        if self.complete():
            first = self.reports[0]
            return f"kernel report [{first.kind}] {first.title}"
        return None

    def new_reports(self) -> list[Report]:
        """Complete reports not returned before (for notices during a shell session)."""
        if not self.complete():
            return []
        fresh = self.reports[self._handed_out :]
        self._handed_out = len(self.reports)
        return fresh

    def settle(self) -> list[Report]:
        """Every report since mark, once whatever is printing has finished (bounded)."""
        self._scan()
        if self.reports or self.console.eof:
            self.console.wait_quiet(self.quiet, self.limit)
            self._scanned_at = -1.0
            self._scan()
        return self.reports


def step_interrupt(
    watch: KernelWatch, expected: Callable[[list[Report]], bool]
) -> Callable[[], str | None]:
    """A scenario's interrupt for its guest commands (VM.watch): a command stops waiting as
    soon as the guest died or a report the scenario does not expect is complete; that report
    is the verdict, and an oopsed task that held a lock (the mmap lock) can keep its command
    from ever returning.  Reports it expects (expected: the reports so far -> all of them
    expected) stop nothing: the scenario goes on after them, its steps and checks still judged
    (a command that then hangs runs into its timeout, which the expected crash excuses)."""

    def interrupt() -> str | None:
        reason = watch.stop_reason()
        if reason is None or reason == GUEST_DIED or not expected(watch.reports):
            return reason
        return None

    return interrupt
