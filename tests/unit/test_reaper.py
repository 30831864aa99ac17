"""lab.reaper's signal path: a handler that never blocks, a stop signal that is not lost, and
no new QEMU once one came.  Real child processes (sleep) stand in for QEMU."""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest

from lab import reaper


@pytest.fixture
def fresh_reaper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaper, "_live", {})
    monkeypatch.setattr(reaper, "_signalled", None)
    monkeypatch.setattr(reaper, "_installed", True)  # keep this process's handlers as they are


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def test_stop_now_takes_no_lock_and_waits_for_nothing(fresh_reaper: None) -> None:
    """A handler can interrupt this very thread inside register() (holding the lock) or inside
    a child's wait(): stop_now must still return, and the child must die."""
    child = _sleeper()
    reaper.register(child)
    with reaper._lock:  # as if the signal came in the middle of register()
        reaper.stop_now(signal.SIGINT)
    assert child.wait(timeout=10) == -signal.SIGKILL
    assert reaper.signalled() == signal.SIGINT
    reaper.kill_all()  # the owner's reaping still works afterwards
    assert not reaper._live


def test_the_first_signal_is_the_one_remembered(fresh_reaper: None) -> None:
    reaper.note(signal.SIGTERM)
    reaper.note(signal.SIGINT)
    assert reaper.signalled() == signal.SIGTERM


def test_no_vm_starts_after_a_stop_signal(fresh_reaper: None) -> None:
    reaper.note(signal.SIGTERM)
    child = _sleeper()
    with pytest.raises(reaper.Stopping, match="not starting a VM: SIGTERM received"):
        reaper.register(child)
    assert child.wait(timeout=10) == -signal.SIGKILL


@pytest.mark.parametrize(
    ("signum", "raised"),
    [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit), (signal.SIGHUP, SystemExit)],
)
def test_a_swallowed_signal_is_raised_again_in_the_main_thread(
    fresh_reaper: None, signum: int, raised: type[BaseException]
) -> None:
    reaper.reraise()  # nothing came yet: no-op
    reaper.note(signum)
    with pytest.raises(raised) as info:
        reaper.reraise()
    if isinstance(info.value, SystemExit):
        assert info.value.code == 128 + signum


def test_reraise_is_a_no_op_in_other_threads(fresh_reaper: None) -> None:
    """Workers of `remaplab run` are stopped by the main thread; an exception raised in one
    would only print a thread's traceback."""
    reaper.note(signal.SIGINT)
    caught: list[BaseException] = []

    def worker() -> None:
        try:
            reaper.reraise()
        except BaseException as exc:  # recorded for the assertion
            caught.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert not t.is_alive() and not caught
