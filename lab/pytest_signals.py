"""Ctrl-C, SIGTERM and SIGHUP under pytest, as under `remaplab run`: every QEMU is killed at once
(the running scenario ends there, reported by pytest as interrupted), pytest still writes its
reports (--junitxml), and the exit status is 128 + the signal (130 for SIGINT, 143 for
SIGTERM).  A stop slower than SLOW_STOP_S leaves every thread's stack in
results/pytest/slow-stop-PID.txt and names it.

The interrupt is raised again before each test, before a test's call and after it: it can be
lost where it lands (inside a __del__: paramiko's Channel and ptyprocess catch everything; see
lab/reaper.py), and the suite then ran on to its end with its VMs killed.

A plugin of its own (registered by lab.pytest_plugin), so that the signal policy is one place."""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import os
import signal
import sys
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING

import pytest

from lab import reaper

if TYPE_CHECKING:
    from _pytest._code.code import TracebackEntry

_KEY = pytest.StashKey[int]()  # the signal that interrupted the session
SLOW_STOP_S = 5.0  # the VMs are gone at once; pytest itself should be done by then


def stacks_path(config: pytest.Config) -> Path:
    """Where a slow stop leaves every thread's stack (one file per pytest process)."""
    return Path(config.rootpath) / "results" / "pytest" / f"slow-stop-{os.getpid()}.txt"


def _drop_stale(folder: Path) -> None:
    """Empty stacks files of pytest processes that are gone (a SIGKILL skips the atexit that
    removes them)."""
    for stale in folder.glob("slow-stop-*.txt"):
        pid = stale.stem.removeprefix("slow-stop-")
        with contextlib.suppress(OSError, ValueError):
            if stale.stat().st_size == 0 and not Path(f"/proc/{int(pid)}").exists():
                stale.unlink()


def pytest_configure(config: pytest.Config) -> None:
    _drop_stale(stacks_path(config).parent)
    reaper.forget()  # a session's signals are its own (pytest run again in one process)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if _KEY not in config.stash:
            _watch_the_stop(stacks_path(config))
        config.stash[_KEY] = signum
        reaper.stop_now(signum)  # the VMs go now, not after the test's teardown
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        current = signal.getsignal(sig)
        # Keep an ignored SIGINT ignored (a background job's), and anybody else's handler.
        if current in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, on_signal)


def _watch_the_stop(path: Path) -> None:
    """If pytest is still stopping after SLOW_STOP_S, every thread's stack goes to path (by
    faulthandler's own thread: it works even when Python code cannot run).  Process-wide: the
    faulthandler_timeout ini option, were it set, would cancel it after the interrupted test."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("w")
        atexit.register(_stopped, path, out)
        faulthandler.dump_traceback_later(SLOW_STOP_S, file=out)


def _stopped(path: Path, out: IO[str]) -> None:
    """At exit, after pytest and the joins of its threads (CPython joins them before atexit):
    no dump wanted any more; the file goes when empty and is named when not."""
    faulthandler.cancel_dump_traceback_later()
    out.close()
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()
        else:
            print(
                f"remaplab: pytest took over {SLOW_STOP_S:g} s to stop; its threads: {path}",
                file=sys.stderr,
            )


def _raise_again(config: pytest.Config) -> None:
    signum = config.stash.get(_KEY, None)
    if signum is not None:
        raise KeyboardInterrupt(f"{signal.Signals(signum).name} ({reaper.AGAIN})")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """No test starts after the signal."""
    _raise_again(item.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A test the signal came during (its setup included) is interrupted, whatever it ended
    with (its VMs were killed under it: a failure then is not a verdict)."""
    _raise_again(item.config)
    try:
        result = yield
    except KeyboardInterrupt:
        raise
    except BaseException:
        _raise_again(item.config)
        raise
    _raise_again(item.config)
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    reaper.kill_all()
    # A signal handled at an instruction without a line number (Python >= 3.11: a `with`
    # block's exit, a `finally`) leaves a traceback entry whose line is None; pytest's terminal
    # report of the interrupt then fails on it (TypeError) and pytest exits 1, not 130.
    excinfo.traceback = excinfo.traceback.filter(has_line)


def has_line(entry: TracebackEntry) -> bool:
    """Whether a pytest traceback entry has a line number (its `lineno` fails when not)."""
    try:
        return isinstance(entry.lineno, int)
    except TypeError:
        return False


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    signum = session.config.stash.get(_KEY, None)
    if signum is not None:
        session.exitstatus = 128 + signum
