"""Ctrl-C and SIGTERM under pytest, as under `remaplab run`: every QEMU is killed at once (the
running scenario ends there, reported by pytest as interrupted), pytest still writes its reports
(--junitxml), and the exit status is 130 for SIGINT, 143 for SIGTERM.

A plugin of its own (registered by lab.pytest_plugin), so that the signal policy is one place."""

from __future__ import annotations

import signal
from types import FrameType

import pytest

from lab import reaper

_KEY = pytest.StashKey[int]()  # the signal that interrupted the session


def pytest_configure(config: pytest.Config) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        config.stash[_KEY] = signum
        reaper.kill_all()  # the VMs go now, not after the test's teardown
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        # Keep an ignored SIGINT ignored (a background job's), and anybody else's handler.
        if current in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, on_signal)


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    reaper.kill_all()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    signum = session.config.stash.get(_KEY, None)
    if signum is not None:
        session.exitstatus = 128 + signum
