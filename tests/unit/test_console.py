"""The console watcher on a real child process: waiting for a report to finish printing."""

from __future__ import annotations

from pathlib import Path

import pexpect

from lab.console import Console


def test_wait_quiet_lets_the_rest_arrive(tmp_path: Path) -> None:
    child = pexpect.spawn(
        "sh", ["-c", "echo 'BUG: first line'; sleep 0.3; echo 'second line'; exec sleep 30"]
    )
    console = Console(child, tmp_path / "console.log")
    try:
        console.wait_for("first line", 10, "the first line")
        assert console.wait_quiet(1.0, 10.0) is True
        assert "second line" in console.text()
        assert console.wait_quiet(60.0, 0.2) is False  # bounded: the limit wins
    finally:
        child.terminate(force=True)
        console.join(2.0)
    assert "second line" in (tmp_path / "console.log").read_text()
