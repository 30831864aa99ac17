"""lab.reaper's signal path: a handler that never blocks, a stop signal that is not lost, and
no new QEMU once one came.  Real child processes (sleep) stand in for QEMU."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path

import pexpect
import pytest

from lab import reaper
from lab.console import Console


@pytest.fixture
def fresh_reaper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaper, "_live", {})
    monkeypatch.setattr(reaper, "_signalled", None)
    monkeypatch.setattr(reaper, "_installed", True)  # keep this process's handlers as they are


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


class NeverWaited:
    """A child whose wait() fails the test: the handler's path must not wait."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def wait(self) -> int:
        raise AssertionError("stop_now waited for a child")


def test_stop_now_takes_no_lock_and_waits_for_nothing(fresh_reaper: None) -> None:
    """A handler can interrupt this very thread inside register() (holding the lock) or inside
    a child's wait(): stop_now must still return at once, and the child must die."""
    child = _sleeper()
    reaper._live[child.pid] = NeverWaited(child.pid)
    done = threading.Event()

    def handler_path() -> None:
        reaper.stop_now(signal.SIGINT)
        done.set()

    with reaper._lock:  # as if the signal came in the middle of register()
        t = threading.Thread(target=handler_path, daemon=True)
        t.start()
        t.join(5)
    assert done.is_set(), "stop_now blocked on reaper's lock"
    assert child.wait(timeout=10) == -signal.SIGKILL
    assert reaper.signalled() == signal.SIGINT


def test_the_first_signal_is_the_one_remembered(fresh_reaper: None) -> None:
    reaper.note(signal.SIGTERM)
    reaper.note(signal.SIGINT)
    assert reaper.signalled() == signal.SIGTERM


def test_no_vm_starts_after_a_stop_signal(fresh_reaper: None) -> None:
    """In the main thread the signal's own exception (the CLI's exit status follows from it);
    in a run's worker thread Stopping, which the suite records as interrupted."""
    reaper.note(signal.SIGTERM)
    child = _sleeper()
    with pytest.raises(SystemExit) as info:
        reaper.register(child)
    assert info.value.code == 128 + signal.SIGTERM
    assert child.wait(timeout=10) == -signal.SIGKILL

    worker_child = _sleeper()
    raised: list[BaseException] = []

    def worker() -> None:
        try:
            reaper.register(worker_child)
        except reaper.Stopping as exc:
            raised.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert [str(e) for e in raised] == ["not starting a VM: SIGTERM received"]
    assert isinstance(raised[0], reaper.Stopping) and raised[0].signum == signal.SIGTERM
    assert worker_child.wait(timeout=10) == -signal.SIGKILL


def test_a_library_user_keeps_pythons_own_ctrl_c(
    fresh_reaper: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """install() (any VM start) leaves SIGINT alone: only the CLI remembers it."""
    monkeypatch.setattr(reaper, "_installed", False)
    monkeypatch.setattr(reaper.atexit, "register", lambda *_a: None)
    before = signal.getsignal(signal.SIGINT)
    reaper.install()
    assert signal.getsignal(signal.SIGINT) is before


def test_forget_clears_the_remembered_signal(fresh_reaper: None) -> None:
    reaper.note(signal.SIGINT)
    reaper.forget()
    assert reaper.signalled() is None
    reaper.reraise()  # nothing to raise


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


def test_a_child_reaped_by_kill_all_is_not_alive_to_its_owner() -> None:
    """The CI failure of stop 12: on SIGINT the main thread's kill_all reaped a QEMU while the
    scenario's thread asked vm.alive; ptyprocess's waitpid found no child and raised, and the
    scenario's thread died with a traceback instead of recording 'interrupted'."""
    child = pexpect.spawn("sleep", ["60"])
    os.kill(child.pid, signal.SIGKILL)
    # kill_all's child.wait(), caught between its waitpid and noting the child terminated
    os.waitpid(child.pid, 0)
    with pytest.raises(pexpect.ExceptionPexpect):
        child.isalive()  # the raw call: what the owner's thread met
    assert reaper.child_alive(child) is False
    assert reaper.child_alive(child) is False  # and again: nothing left half-done


def test_the_console_reader_ends_when_its_qemu_was_reaped_elsewhere(tmp_path: Path) -> None:
    """On the pty's EOF pexpect asks isalive(), and a child another thread reaped makes that
    raise ExceptionPexpect instead of EOF: the reader must still end and mark the console
    closed, or every wait on it runs to its bound.  (Reaped before the reader starts, so the
    order is the bad one every time.)"""
    child = pexpect.spawn("sh", ["-c", "echo ready; exec sleep 60"])
    assert child.expect_exact("ready", timeout=10) == 0
    os.kill(child.pid, signal.SIGKILL)
    os.waitpid(child.pid, 0)
    console = Console(child, tmp_path / "console.log")
    try:
        assert console.wait_closed(10.0), "the console reader never ended"
    finally:
        with contextlib.suppress(pexpect.ExceptionPexpect):  # reaped: close says so
            child.close(force=True)


@pytest.mark.parametrize(
    ("script", "said"),
    [("exit 3", "status 3"), ("kill -ABRT $$", "killed by SIGABRT"), ("true", "status 0")],
)
def test_how_a_child_ended_is_said_in_words(script: str, said: str) -> None:
    """A QEMU that dies on an assertion (SIGABRT) has no exit status: the boot failure says so
    instead of 'status None'."""
    child = pexpect.spawn("sh", ["-c", script])
    child.expect(pexpect.EOF, timeout=10)
    child.wait()
    assert reaper.how_it_ended(child) == said
