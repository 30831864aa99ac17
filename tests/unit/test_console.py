"""The console watcher on a real child process: waiting for a report to finish printing.

The child is `cat`: it prints a line when the test sends one, so the test decides when output
arrives, and every bound below is checked against the console's own arrival times
(Console.last_output), not against how fast this machine happens to be."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from lab.console import Console

WAIT = 600.0  # a bound on waits that end by themselves; never reached unless the code is broken


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    child = pexpect.spawn("cat", echo=False)
    watcher = Console(child, tmp_path / "console.log")
    try:
        yield watcher
    finally:
        child.terminate(force=True)
        watcher.join(WAIT)


def say(console: Console, line: str) -> float:
    """Have the child print line; return when it arrived (the console's own clock)."""
    console.child.sendline(line)
    console.wait_for(line, WAIT, repr(line))
    return console.last_output


def test_wait_quiet_waits_for_the_quiet_window(console: Console) -> None:
    arrived = say(console, "BUG: first line")
    assert console.wait_quiet(0.5, WAIT) is True
    assert time.monotonic() - arrived >= 0.5


def test_wait_quiet_lets_the_rest_arrive(console: Console, tmp_path: Path) -> None:
    """A line arriving within the quiet window restarts it: the wait ends only `quiet` seconds
    after the last line, with that line in the text."""
    quiet = 0.5
    for attempt in range(8):  # a loaded machine may not print within the window: widen it
        first = say(console, f"BUG: first line {attempt}")
        returned: list[tuple[bool, float, str]] = []

        def wait(q: float, out: list[tuple[bool, float, str]]) -> None:
            ok = console.wait_quiet(q, WAIT)
            out.append((ok, time.monotonic(), console.text()))

        waiter = threading.Thread(target=wait, args=(quiet, returned))
        waiter.start()
        second = say(console, f"second line {attempt}")
        waiter.join(WAIT)
        ((ok, at, text),) = returned
        assert ok is True
        if second - first < quiet:  # the second line came inside the window
            assert f"second line {attempt}" in text
            assert at >= second + quiet
            break
        quiet *= 2
    else:
        pytest.fail("no line ever arrived within the quiet window, even at 64 s")
    assert "second line" in (tmp_path / "console.log").read_text()


def test_wait_quiet_is_bounded_by_its_limit(console: Console) -> None:
    say(console, "BUG: a line")
    start = time.monotonic()
    assert console.wait_quiet(WAIT, 0.2) is False  # the limit wins over the quiet window
    assert time.monotonic() - start >= 0.2


def test_wait_quiet_ends_when_the_console_closes(console: Console) -> None:
    say(console, "BUG: last words")
    console.child.sendeof()  # cat exits: EOF on the console
    assert console.wait_closed(WAIT) is True
    assert console.wait_quiet(WAIT, WAIT / 10) is True  # not the limit: EOF ends the wait


def test_console_sync_is_false_when_the_guest_dies_meanwhile() -> None:
    """The console ends (QEMU exited) between the sync line's write and its arrival: False,
    never an exception out of the wait."""
    from types import SimpleNamespace

    from lab.console import ConsoleEOF
    from lab.watch import sync_console

    class Dying:
        def mark(self) -> int:
            return 0

        def wait_for(self, *args: object, **kwargs: object) -> None:
            raise ConsoleEOF("QEMU exited")

    assert sync_console(Dying(), lambda _c, _t: SimpleNamespace(ok=True)) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(120.0, "120"), (30, "30"), (12.34, "12"), (2.0, "2"), (1.5, "1.5"), (0.8, "0.8")],
)
def test_a_wait_bound_is_shown_as_given(value: float, shown: str) -> None:
    from lab.console import shown_seconds

    assert shown_seconds(value) == shown
