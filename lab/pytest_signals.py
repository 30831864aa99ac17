"""Ctrl-C and SIGTERM under pytest, as under `remaplab run`: every QEMU is killed at once (the
running scenario ends there, reported by pytest as interrupted), pytest still writes its reports
(--junitxml), and the exit status is 130 for SIGINT, 143 for SIGTERM.

A plugin of its own (registered by lab.pytest_plugin), so that the signal policy is one place."""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import IO, Any

import pytest

from lab import reaper

_KEY = pytest.StashKey[int]()  # the signal that interrupted the session
_STACKS = pytest.StashKey[Path]()  # where the threads' stacks go if the stop is slow
SLOW_STOP_S = 5.0  # the VMs are gone at once; pytest itself should be done by then


def stacks_path(config: pytest.Config) -> Path:
    """Where a slow stop leaves every thread's stack (one file per pytest process)."""
    return Path(config.rootpath) / "results" / "pytest" / f"slow-stop-{os.getpid()}.txt"


def pytest_configure(config: pytest.Config) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        first = _KEY not in config.stash
        config.stash[_KEY] = signum
        reaper.kill_all()  # the VMs go now, not after the test's teardown
        if first:
            _watch_the_stop(config)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        # Keep an ignored SIGINT ignored (a background job's), and anybody else's handler.
        if current in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, on_signal)


def _watch_the_stop(config: pytest.Config) -> None:
    """If pytest is still stopping after SLOW_STOP_S, every thread's stack goes to a file (by
    faulthandler's own thread: it works even when Python code cannot run)."""
    path = stacks_path(config)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("w")
        config.stash[_STACKS] = path
        faulthandler.dump_traceback_later(SLOW_STOP_S, file=out)
        atexit.register(_stopped, path, out)


def _stopped(path: Path, out: IO[str]) -> None:
    """At exit (after pytest and its threads are done): no dump wanted any more."""
    faulthandler.cancel_dump_traceback_later()
    out.close()
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_STACKS, None)
    if path is not None and path.is_file() and path.stat().st_size > 0:
        print(
            f"remaplab: pytest took over {SLOW_STOP_S:.0f} s to stop; its threads: {path}",
            file=sys.stderr,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    reaper.kill_all()
    # A signal handled at an instruction without a line number (Python >= 3.11: a `with`
    # block's exit, a `finally`) leaves a traceback entry whose line is None; pytest's terminal
    # report of the interrupt then fails on it (TypeError) and pytest exits 1, not 130.
    excinfo.traceback = excinfo.traceback.filter(has_line)


def has_line(entry: Any) -> bool:
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
