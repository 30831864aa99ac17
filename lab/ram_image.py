"""A guest's RAM file saved as a sparse image and loaded back (lab/snapshot.py): only the data
extents are copied, all-zero chunks stay holes."""

from __future__ import annotations

import os
from pathlib import Path

CHUNK = 1 << 16  # RAM is saved in chunks this size; all-zero chunks stay holes


class RamImageError(OSError):
    """The saved image is shorter than its own extents say."""


def save_ram(fd: int, target: Path) -> int:
    """Copy guest RAM (the shared file fd) into target, sparse: holes and all-zero chunks stay
    holes.  Returns the bytes written."""
    size = os.fstat(fd).st_size
    zero = bytes(CHUNK)
    written = 0
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(out, size)
        for start, end in _extents(fd, size):
            for off in range(start - start % CHUNK, end, CHUNK):
                chunk = os.pread(fd, CHUNK, off)
                if chunk != zero[: len(chunk)]:
                    os.pwrite(out, chunk, off)
                    written += len(chunk)
    finally:
        os.close(out)
    return written


def load_ram(source: Path, fd: int) -> None:
    """Fill the (new, empty) RAM file fd from a saved image: its data extents only."""
    src = os.open(source, os.O_RDONLY)
    try:
        size = os.fstat(src).st_size
        os.ftruncate(fd, size)
        for start, end in _extents(src, size):
            os.lseek(fd, start, os.SEEK_SET)
            off = start
            while off < end:
                sent = os.sendfile(fd, src, off, end - off)
                if sent == 0:
                    raise RamImageError(f"{source} ended early at {off}")
                off += sent
    finally:
        os.close(src)


def _extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The data extents of a (sparse) file: (start, end) pairs."""
    found: list[tuple[int, int]] = []
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after off
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        found.append((start, end))
        off = end
    return found
