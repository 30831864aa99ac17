"""The interrupt's traceback as pytest reports it: entries without a line number dropped."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import types
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
    "conftest.py": "import lab.pytest_signals\n\nlab.pytest_signals.SLOW_STOP_S = 1.0\n",
    "test_slow.py": """
import pathlib
import time

import pytest


@pytest.fixture
def slow_teardown():
    yield
    time.sleep(TEARDOWN_S)  # a teardown that keeps pytest from stopping at once


def test_wait(slow_teardown):
    pathlib.Path("started").touch()
    time.sleep(60)
""",
}


def _interrupted(
    tmp_path: Path, teardown_s: float
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A pytest run of SLOW_PROJECT interrupted (SIGINT) inside its test; its stacks file."""
    for name, text in SLOW_PROJECT.items():
        (tmp_path / name).write_text(text.replace("TEARDOWN_S", str(teardown_s)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_slow.py"],
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
    out, _ = proc.communicate(timeout=30)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out)
    return done, tmp_path / "results" / "pytest" / f"slow-stop-{proc.pid}.txt"


def test_a_slow_stop_leaves_every_threads_stack(tmp_path: Path) -> None:
    done, stacks = _interrupted(tmp_path, teardown_s=2.5)
    assert done.returncode == 130, done.stdout
    assert f"pytest took over 1 s to stop; its threads: {stacks}" in done.stdout
    assert "in slow_teardown" in stacks.read_text()  # where it was stuck


def test_a_prompt_stop_leaves_no_stacks_file(tmp_path: Path) -> None:
    done, stacks = _interrupted(tmp_path, teardown_s=0.0)
    assert done.returncode == 130, done.stdout
    assert not stacks.exists()
    assert "took over" not in done.stdout
