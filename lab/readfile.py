"""Read a user-named file with a bound: a folder, a device (/dev/zero never ends) or a file over
the limit is one clear error, never a read without end or a wait for a writer that never comes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lab.errors import LabError

CHUNK = 1 << 20


def read_limited(
    path: Path,
    limit: int,
    what: str,
    error: type[LabError] = LabError,
    pipes: bool = False,
) -> bytes:
    """path's bytes, at most limit of them.  what names the expected file in errors ("a scenario
    is a YAML file"); pipes: a FIFO is read as a pipe (`triage <(zcat log.gz)`), else refused."""
    flags = os.O_RDONLY | os.O_CLOEXEC | (0 if pipes else os.O_NONBLOCK)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO does not wait for a writer
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or (pipes and stat.S_ISFIFO(mode))):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise error(f"{path}: cannot read: {kind}; {what}")
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:  # in pieces: read(limit) would reserve the whole limit at once
            chunk = os.read(fd, min(CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > limit:
        raise error(f"{path}:1: over {_size(limit)}; {what} of at most {_size(limit)}")
    return raw


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def last_line(path: Path) -> str:
    """The last non-blank line of a log (stripped), "" when there is none or it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")
