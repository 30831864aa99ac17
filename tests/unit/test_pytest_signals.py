"""The interrupt's traceback as pytest reports it: entries without a line number dropped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.pytest_signals import has_line, pytest_keyboard_interrupt


def _with_block() -> types.FrameType:
    with open("/dev/null") as fh:
        fh.read()
    return sys._getframe()


def _lineless_offset(code: types.CodeType) -> int:
    """An instruction of code that has no line number (a `with` block's exit path)."""
    return next(start for start, _end, line in code.co_lines() if line is None)


def test_an_interrupt_at_an_instruction_without_a_line_is_still_reported() -> None:
    interrupt = KeyboardInterrupt("SIGINT")
    try:
        raise interrupt
    except KeyboardInterrupt:
        pass
    real = interrupt.__traceback__
    assert real is not None
    frame = _with_block()
    lineless = types.TracebackType(None, frame, _lineless_offset(frame.f_code), -1)
    assert lineless.tb_lineno is None  # as CPython >= 3.11 leaves it for such an instruction
    real.tb_next = lineless
    excinfo = pytest.ExceptionInfo.from_exc_info((KeyboardInterrupt, interrupt, real))
    with pytest.raises(TypeError):
        excinfo.getrepr(funcargs=True)  # what pytest's terminal report did: exit 1, not 130
    pytest_keyboard_interrupt(excinfo)
    assert [has_line(e) for e in excinfo.traceback] == [True]
    assert "KeyboardInterrupt: SIGINT" in str(excinfo.getrepr(funcargs=True))


SLOW_PROJECT = {
    "conftest.py": "import lab.pytest_signals\n\nlab.pytest_signals.SLOW_STOP_S = STOP_AFTER\n",
    "test_slow.py": """
import pathlib
import threading
import time

import pytest


@pytest.fixture
def slow_teardown():
    yield
    time.sleep(TEARDOWN_S)  # a teardown that keeps pytest from stopping at once


def test_wait(slow_teardown):
    pathlib.Path("started").touch()
    time.sleep(60)


def test_thread(slow_teardown):
    # A thread that keeps the interpreter from exiting (joined after pytest is done)
    threading.Thread(target=time.sleep, args=(THREAD_S,), name="lingering").start()
    pathlib.Path("started").touch()
    time.sleep(60)


class Swallower:
    def __del__(self):
        try:
            pathlib.Path("started").touch()
            time.sleep(60)  # the signal arrives here
        except:  # noqa: E722 - as paramiko's Channel.__del__ and ptyprocess's __del__ do
            pass


def test_swallowed():
    Swallower()  # freed at once: its __del__ swallows the interrupt


@pytest.fixture
def swallowed_in_setup():
    Swallower()
    yield


def test_body(swallowed_in_setup):
    pathlib.Path("body-ran").touch()
    time.sleep(60)


@pytest.fixture
def swallowed_in_teardown():
    yield
    Swallower()


def test_quick(swallowed_in_teardown):
    pass


def test_next():
    pathlib.Path("next-ran").touch()
    time.sleep(60)
""",
}


@dataclass(frozen=True)
class Stopped:
    returncode: int
    stdout: str
    took: float  # from the signal to the end of its output


def _interrupted(
    tmp_path: Path, test: str, teardown_s: float = 0.0, thread_s: float = 0.0, slow_s: float = 2.0
) -> tuple[Stopped, Path]:
    """A pytest run of SLOW_PROJECT tests (names separated by spaces) interrupted (SIGINT) inside
    the first; its stacks file."""
    for name, text in SLOW_PROJECT.items():
        for name_, value in (
            ("TEARDOWN_S", teardown_s),
            ("THREAD_S", thread_s),
            ("STOP_AFTER", slow_s),
        ):
            text = text.replace(name_, str(value))
        (tmp_path / name).write_text(text)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *(f"test_slow.py::{name}" for name in test.split()),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the test did not start"
        time.sleep(0.05)  # polling a file the child writes; bounded by the deadline
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # not stopped: say so with what it printed
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"pytest still ran 30 s after the signal:\n{out[-3000:]}")
    done = Stopped(proc.returncode, out, time.monotonic() - sent)
    return done, tmp_path / "results" / "pytest" / f"slow-stop-{proc.pid}.txt"


def test_a_slow_stop_leaves_every_threads_stack(tmp_path: Path) -> None:
    done, stacks = _interrupted(tmp_path, "test_wait", teardown_s=3.5)
    assert done.returncode == 130, done.stdout
    assert f"pytest took over 2 s to stop; its threads: {stacks}" in done.stdout
    assert "in slow_teardown" in stacks.read_text()  # where it was stuck


def test_a_stop_held_after_pytest_by_a_thread_is_named_too(tmp_path: Path) -> None:
    done, stacks = _interrupted(tmp_path, "test_thread", thread_s=3.5)
    assert done.returncode == 130, done.stdout
    assert f"pytest took over 2 s to stop; its threads: {stacks}" in done.stdout
    assert "_shutdown" in stacks.read_text()  # the interpreter joining the lingering thread


def test_a_prompt_stop_leaves_no_stacks_file(tmp_path: Path) -> None:
    done, stacks = _interrupted(tmp_path, "test_wait", slow_s=30.0)
    assert done.returncode == 130, done.stdout
    assert done.took < 30.0
    assert not stacks.exists()  # made at the signal, removed at exit: it stayed empty
    assert "took over" not in done.stdout


@pytest.mark.parametrize(
    ("tests", "not_run", "passed"),
    [
        ("test_swallowed test_next", "next-ran", False),  # in the call: stopped after it
        ("test_body test_next", "body-ran", False),  # in a fixture's setup: before the call
        ("test_quick test_next", "next-ran", True),  # in a teardown: before the next test
    ],
)
def test_an_interrupt_swallowed_where_it_arrived_still_stops_the_session(
    tmp_path: Path, tests: str, not_run: str, passed: bool
) -> None:
    """A __del__ loses the KeyboardInterrupt of a signal that arrives while it runs (and
    paramiko's, ptyprocess's catch everything): the session must stop all the same, not run
    on."""
    done, _stacks = _interrupted(tmp_path, tests, slow_s=30.0)
    assert done.returncode == 130, done.stdout
    assert not (tmp_path / not_run).exists(), f"{not_run}: it ran after the signal"
    assert "raised again: it was swallowed where it arrived" in done.stdout
    # a test interrupted in its setup or call is not a pass; one that had passed stays one
    assert ("1 passed" in done.stdout) == passed, done.stdout


def test_empty_stacks_files_of_gone_processes_are_dropped(tmp_path: Path) -> None:
    """A SIGKILLed pytest never removes its empty stacks file: the next session does."""
    from lab.pytest_signals import _drop_stale

    gone = subprocess.Popen(["true"])
    gone.wait()
    empty_gone = tmp_path / f"slow-stop-{gone.pid}.txt"
    empty_gone.touch()
    kept_live = tmp_path / f"slow-stop-{os.getpid()}.txt"  # still running: may fill yet
    kept_live.touch()
    evidence = tmp_path / "slow-stop-1.txt"
    evidence.write_text("Thread 0x1 (most recent call first):\n")  # a real dump is kept
    _drop_stale(tmp_path)
    assert not empty_gone.exists() and kept_live.exists() and evidence.exists()
