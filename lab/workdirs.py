"""VM work folders under the cache's run/ (QMP socket, console log, QEMU argv and stderr,
stall captures).  A VM's folder goes when it stops cleanly; a failed or stalled VM's folder is
kept, because the paths remaplab printed name it.  Kept folders have a bounded retention: each
new folder prunes the oldest kept ones beyond KEEP_FOLDERS, and any older than MAX_AGE_S, never
the folder of a process that still runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from lab.paths import run_dir

KEEP_FOLDERS = 200  # the newest kept folders of finished processes
MAX_AGE_S = 14 * 86400.0
OWNER = "owner.pid"  # the process that made the folder: running, it is never pruned
PREFIX = "vm-"


def new_workdir(arch: str) -> Path:
    """A fresh VM work folder for arch, owned by this process; prunes the old kept ones."""
    directory = run_dir()
    prune(directory)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{arch}-", dir=directory))
    (path / OWNER).write_text(f"{os.getpid()}\n")
    return path


def _owner_runs(folder: Path) -> bool:
    try:
        pid = int((folder / OWNER).read_text())
    except (OSError, ValueError):
        return False  # no owner recorded (made before retention existed)
    return pid == os.getpid() or Path(f"/proc/{pid}").exists()


def _age(folder: Path, now: float) -> float:
    try:
        return now - folder.stat().st_mtime
    except OSError:
        return 0.0


def prune(
    directory: Path,
    keep: int | None = None,
    max_age_s: float | None = None,
    now: float | None = None,
) -> list[Path]:
    """Remove kept VM folders in directory beyond the newest `keep` (KEEP_FOLDERS), and those
    older than max_age_s (MAX_AGE_S); a folder whose owner still runs stays.  Returns what was
    removed."""
    keep = KEEP_FOLDERS if keep is None else keep
    max_age_s = MAX_AGE_S if max_age_s is None else max_age_s
    now = time.time() if now is None else now
    candidates = [f for f in directory.glob(f"{PREFIX}*") if f.is_dir() and not _owner_runs(f)]
    candidates.sort(key=lambda f: _age(f, now))  # newest first
    doomed = candidates[keep:] + [f for f in candidates[:keep] if _age(f, now) > max_age_s]
    for folder in doomed:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
    return doomed
