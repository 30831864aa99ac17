"""Retention of kept VM folders under the cache's run/: bounded by count and age, never the
folder of a process that still runs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from lab import workdirs

NOW = 2_000_000_000.0
DAY = 86400.0


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _folder(directory: Path, name: str, age_s: float, owner: int | None) -> Path:
    folder = directory / name
    folder.mkdir()
    (folder / "console.log").write_text("boot\n")
    if owner is not None:
        (folder / workdirs.OWNER).write_text(f"{owner}\n")
    os.utime(folder, (NOW - age_s, NOW - age_s))
    return folder


def test_keeps_the_newest_and_drops_the_rest(tmp_path: Path) -> None:
    dead = _dead_pid()
    folders = [_folder(tmp_path, f"vm-x86_64-{n}", n * 60.0, dead) for n in range(5)]
    removed = workdirs.prune(tmp_path, keep=3, now=NOW)
    assert sorted(removed) == sorted(folders[3:])
    assert [f.exists() for f in folders] == [True, True, True, False, False]


def test_drops_folders_older_than_the_age_bound_even_within_the_count(tmp_path: Path) -> None:
    young = _folder(tmp_path, "vm-arm64-young", DAY, None)
    old = _folder(tmp_path, "vm-arm64-old", 20 * DAY, None)  # no owner: made before retention
    workdirs.prune(tmp_path, keep=10, max_age_s=14 * DAY, now=NOW)
    assert young.exists() and not old.exists()


def test_never_the_folder_of_a_running_process(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        running = _folder(tmp_path, "vm-x86_64-running", 30 * DAY, sleeper.pid)
        mine = _folder(tmp_path, "vm-x86_64-mine", 30 * DAY, os.getpid())
        finished = _folder(tmp_path, "vm-x86_64-finished", 30 * DAY, _dead_pid())
        workdirs.prune(tmp_path, keep=0, now=NOW)
        assert running.exists() and mine.exists() and not finished.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_other_folders_are_not_touched(tmp_path: Path) -> None:
    ports = tmp_path / "ports"
    ports.mkdir()
    os.utime(ports, (NOW - 99 * DAY, NOW - 99 * DAY))
    workdirs.prune(tmp_path, keep=0, now=NOW)
    assert ports.exists()


def test_a_new_folder_names_its_owner_and_prunes(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workdirs, "KEEP_FOLDERS", 2)
    run = tmp_cache / "run"
    run.mkdir(parents=True)
    stale = [_folder(run, f"vm-x86_64-old{n}", DAY + n, None) for n in range(3)]
    made = workdirs.new_workdir("x86_64")
    assert made.parent == run and made.name.startswith("vm-x86_64-")
    assert (made / workdirs.OWNER).read_text() == f"{os.getpid()}\n"
    assert [f.exists() for f in stale] == [True, True, False]
    assert time.time() - made.stat().st_mtime < 60
