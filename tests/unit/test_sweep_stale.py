"""A RAM file a dead lab process left in /dev/shm is removed by the next VM's start-up, but one
this user may not remove (another user's, in the sticky /dev/shm) is left alone, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.physmem import sweep_stale


def dead_pid() -> int:
    pid = 4_194_000
    while Path(f"/proc/{pid}").exists():
        pid += 1
    return pid


def test_stale_files_go_live_ones_stay(tmp_path: Path) -> None:
    import os

    stale = tmp_path / f"remaplab-{dead_pid()}-vm-x.ram"
    live = tmp_path / f"remaplab-{os.getpid()}-vm-y.ram"
    stale.write_bytes(b"")
    live.write_bytes(b"")
    sweep_stale(tmp_path)
    assert not stale.exists() and live.exists()


def test_another_users_stale_file_is_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / f"remaplab-{dead_pid()}-vm-x.ram"
    theirs.write_bytes(b"")

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    sweep_stale(tmp_path)  # no exception
    monkeypatch.undo()
    assert theirs.exists()
