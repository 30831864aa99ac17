"""Retention of kept VM folders under the cache's run/: bounded by count and age, never the
folder of a VM that may still run (its owner holds a lock, whatever its PID namespace)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import workdirs

NOW = 2_000_000_000.0
DAY = 86400.0


def _folder(directory: Path, name: str, age_s: float, owner_file: bool = True) -> Path:
    folder = directory / name
    folder.mkdir()
    (folder / "console.log").write_text("boot\n")
    if owner_file:  # left by a VM that stopped (or died): nobody holds its lock
        (folder / workdirs.OWNER).write_text("12345\n")
    os.utime(folder, (NOW - age_s, NOW - age_s))
    return folder


def test_keeps_the_newest_and_drops_the_rest(tmp_path: Path) -> None:
    folders = [_folder(tmp_path, f"vm-x86_64-{n}", n * 60.0) for n in range(5)]
    removed = workdirs.prune(tmp_path, keep=3, now=NOW)
    assert sorted(removed) == sorted(folders[3:])
    assert [f.exists() for f in folders] == [True, True, True, False, False]


def test_drops_folders_older_than_the_age_bound_even_within_the_count(tmp_path: Path) -> None:
    young = _folder(tmp_path, "vm-arm64-young", DAY, owner_file=False)
    old = _folder(tmp_path, "vm-arm64-old", 20 * DAY, owner_file=False)  # made before retention
    workdirs.prune(tmp_path, keep=10, max_age_s=14 * DAY, now=NOW)
    assert young.exists() and not old.exists()


def test_a_young_folder_without_its_lock_yet_survives(tmp_path: Path) -> None:
    """Between mkdtemp and the lock another process may prune: the newest folder stays."""
    fresh = _folder(tmp_path, "vm-x86_64-fresh", 0.0, owner_file=False)
    others = [_folder(tmp_path, f"vm-x86_64-{n}", DAY + n) for n in range(3)]
    workdirs.prune(tmp_path, keep=1, now=NOW)
    assert fresh.exists() and not any(f.exists() for f in others)


def test_never_a_folder_whose_owner_holds_its_lock(tmp_cache: Path) -> None:
    """Held by another process (as a VM's owner across PID namespaces would) or by this one."""
    run = tmp_cache / "run"
    run.mkdir(parents=True)
    theirs = _folder(run, "vm-x86_64-theirs", 30 * DAY)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(theirs / workdirs.OWNER)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        mine, fd = workdirs.new_workdir("x86_64")
        assert mine.parent == run
        os.utime(mine, (NOW - 30 * DAY, NOW - 30 * DAY))
        stopped = _folder(run, "vm-x86_64-stopped", 30 * DAY)
        workdirs.prune(run, keep=0, now=NOW)
        assert theirs.exists() and mine.exists() and not stopped.exists()
        workdirs.release(mine, fd, kept=True)
        assert not workdirs.in_use(mine)
        assert time.time() - mine.stat().st_mtime < 60  # a kept folder's age counts from now
    finally:
        holder.kill()
        holder.wait()
    assert not workdirs.in_use(theirs)  # the lock went with its process


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_other_folders_are_not_touched(tmp_path: Path) -> None:
    ports = tmp_path / "ports"
    ports.mkdir()
    os.utime(ports, (NOW - 99 * DAY, NOW - 99 * DAY))
    workdirs.prune(tmp_path, keep=0, now=NOW)
    assert ports.exists()


def test_a_new_folder_is_locked_and_prunes(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workdirs, "KEEP_FOLDERS", 2)
    run = tmp_cache / "run"
    run.mkdir(parents=True)
    stale = [_folder(run, f"vm-x86_64-old{n}", DAY + n) for n in range(3)]
    made, fd = workdirs.new_workdir("x86_64")
    try:
        assert made.parent == run and made.name.startswith("vm-x86_64-")
        assert workdirs.in_use(made)
        probe = os.open(made / workdirs.OWNER, os.O_RDONLY)
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(probe)
        assert [f.exists() for f in stale] == [True, True, False]
    finally:
        workdirs.release(made, fd, kept=False)
