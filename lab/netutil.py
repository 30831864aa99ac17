"""Loopback port allocation for forwarded guest ports and gdb stubs.

A port is free when the kernel hands it out for ``bind(0)``, but it is only QEMU's once QEMU
binds it a moment later: between the two, another remaplab process (a pytest-xdist worker, a
second `remaplab run`, a shard) could be handed the same number.  So every port handed out is
also reserved with an exclusive ``flock`` on ``<run dir>/ports/PORT.lock``, held by this process
until ``release_port`` or until HOLD_MAX later reservations (by then QEMU bound it long ago, or
died): a port another process holds is never handed out.  A released lock file is unlinked
while still locked, and a lock taken on a file that is no longer at its path counts as not
taken, so the folder holds only the ports held now (and a dead process's last few).  Processes
with different caches (REMAPLAB_CACHE) do not see each other's reservations; QEMU losing the
race is still retried by the caller (lab/vm.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from pathlib import Path

from lab.errors import LabError

PICK_ATTEMPTS = 64
HOLD_MAX = 32  # reservations one process holds at once; the oldest is released first

_held: dict[int, tuple[int, Path]] = {}  # port -> (descriptor carrying our flock, its file)
_lock = threading.Lock()
_swept = False  # this process has removed the lock files nobody holds (once)


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ports_dir() -> Path:
    from lab.paths import run_dir

    path = run_dir() / "ports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _reserve(port: int) -> bool:
    """Take port's lock file; False when another process (or thread) holds it."""
    path = ports_dir() / f"{port}.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:  # not ours to create or open: nobody can lock it for us either
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not _same_file(fd, path):
            raise FileNotFoundError(path)  # released and unlinked after we opened it
    except OSError:
        os.close(fd)
        return False
    _held[port] = (fd, path)
    while len(_held) > HOLD_MAX:
        _release_locked(next(iter(_held)))
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file fd is still the one at path (not unlinked, not replaced)."""
    try:
        mine, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def sweep_locks() -> int:
    """Unlink the lock files nobody holds (a dead process's last reservations, or files from
    before releases unlinked them); returns how many.  Each is unlinked while locked and only
    if still at its path, as a release does, so no reservation is lost."""
    removed = 0
    for path in ports_dir().glob("*.lock"):
        if path.stem.isdigit() and int(path.stem) in _held:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, path):
                path.unlink()
                removed += 1
        except OSError:
            pass  # held by another process: its reservation stands
        finally:
            os.close(fd)
    return removed


def _release_locked(port: int) -> None:
    held = _held.pop(port, None)
    if held is not None:
        fd, path = held
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: a process that opened it sees it gone (_reserve)
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the last descriptor drops the flock


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 right now and reserved against every other remaplab process
    sharing this cache (QEMU may still lose a race to an unrelated program; callers retry)."""
    global _swept
    with _lock:
        if not _swept:
            _swept = True
            sweep_locks()
        for _ in range(PICK_ATTEMPTS):
            port = _kernel_port()
            if port not in _held and _reserve(port):
                return port
    raise LabError(f"no free loopback port after {PICK_ATTEMPTS} attempts")


def release_port(port: int) -> None:
    """Give up this process's reservation of port (QEMU has bound it or is gone)."""
    with _lock:
        _release_locked(port)


def held_ports() -> list[int]:
    with _lock:
        return list(_held)
