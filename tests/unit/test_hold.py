"""guest_tools.hold's shell script, run by a real shell on the host with stand-in holders:
a holder that dies before its report is named by its own exit status and stderr (a user's
driver got remaplab-map SIGKILLed, and the lab said "printed no JSON (exit 0)")."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.guest_tools import exit_words, hold
from lab.ssh import CommandResult


class HostShell:
    """Runs the guest's commands in /bin/sh here, with PATH holding the stand-in tools."""

    def __init__(self, bin_dir: Path) -> None:
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(self, command: str, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        start = time.monotonic()
        p = subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, timeout=timeout, env=self.env
        )
        return CommandResult(command, p.returncode, p.stdout, p.stderr, time.monotonic() - start)

    def put(self, local: Path, remote: str, mode: int = 0o644, timeout: float = 120.0) -> None:
        raise NotImplementedError


def _tool(tmp_path: Path, body: str) -> HostShell:
    tool = tmp_path / "fakehold"
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(0o755)
    return HostShell(tmp_path)


def test_a_holder_killed_before_its_report_is_named_with_its_signal(tmp_path: Path) -> None:
    shell = _tool(tmp_path, 'echo "Killed" >&2; kill -9 $$')
    with pytest.raises(LabError) as err:
        hold(shell, ["--x"], timeout=20, tool="fakehold")
    message = str(err.value)
    assert "fakehold --hold printed no report" in message
    assert "exited with status 137 (killed by SIGKILL)" in message and "Killed" in message


def test_a_holder_that_exits_with_an_error_says_so(tmp_path: Path) -> None:
    shell = _tool(tmp_path, 'echo "fakehold: cannot open /dev/nope: No such file" >&2; exit 2')
    with pytest.raises(LabError, match=r"exited with status 2\b.*cannot open /dev/nope"):
        hold(shell, ["--x"], timeout=20, tool="fakehold")


def test_a_holder_that_reports_is_held(tmp_path: Path) -> None:
    shell = _tool(tmp_path, 'echo "{\\"ok\\": true, \\"pid\\": $$}"; exec sleep 30')
    held = hold(shell, ["--x"], timeout=20, tool="fakehold")
    assert held.report["ok"] is True
    os.kill(held.pid, 9)


def test_exit_words() -> None:
    assert exit_words("x exited with status 139") == "x exited with status 139 (killed by SIGSEGV)"
    assert exit_words("x exited with status 1") == "x exited with status 1"
