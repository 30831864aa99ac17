"""VM work folders under the cache's run/ (QMP socket, console log, QEMU argv and stderr,
stall captures).  A VM's folder goes when it stops cleanly; a failed or stalled VM's folder is
kept, because the paths remaplab printed name it.  Kept folders have a bounded retention: each
new folder prunes the oldest kept ones beyond KEEP_FOLDERS, and any kept longer than MAX_AGE_S,
never a folder whose VM is still running (its owner holds a lock on OWNER while it does: this
holds across PID namespaces and PID reuse, and a dead owner's lock is gone with it)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

from lab.paths import run_dir

KEEP_FOLDERS = 200  # the most recently kept folders of VMs that no longer run
MAX_AGE_S = 14 * 86400.0
OWNER = "owner.lock"  # locked (flock) by the VM's process while the VM may run
PREFIX = "vm-"


def new_workdir(arch: str) -> tuple[Path, int]:
    """A fresh VM work folder for arch and the fd of its owner lock (close it with release());
    prunes the old kept folders first."""
    directory = run_dir()
    prune(directory)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{arch}-", dir=directory))
    fd = os.open(path / OWNER, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, f"{os.getpid()}\n".encode())  # for a reader; the lock is what counts
    return path, fd


def release(folder: Path, fd: int, kept: bool) -> None:
    """The VM stopped: its folder is no longer in use.  A kept folder's age counts from now."""
    if kept:
        with contextlib.suppress(OSError):
            os.utime(folder)
    os.close(fd)


def in_use(folder: Path) -> bool:
    """Whether a process holds folder's owner lock (its VM may still run)."""
    try:
        fd = os.open(folder / OWNER, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # no owner lock (a folder made before retention existed)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


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
    """Remove VM folders in directory that are not in use, beyond the newest `keep`
    (KEEP_FOLDERS) and any older than max_age_s (MAX_AGE_S).  Returns what was removed."""
    keep = KEEP_FOLDERS if keep is None else keep
    max_age_s = MAX_AGE_S if max_age_s is None else max_age_s
    now = time.time() if now is None else now
    idle = [f for f in directory.glob(f"{PREFIX}*") if f.is_dir() and not in_use(f)]
    idle.sort(key=lambda f: _age(f, now))  # newest first
    doomed = idle[keep:] + [f for f in idle[:keep] if _age(f, now) > max_age_s]
    removed = []
    for folder in doomed:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
            removed.append(folder)
    return removed
