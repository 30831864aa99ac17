"""A deterministic newc cpio writer (what the kernel unpacks as an initramfs).

Same inputs give the same bytes: entries sorted, mtimes zero, owner root, inodes numbered in
order.  That makes the initramfs cacheable by content."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from typing import BinaryIO


@dataclass
class Archive:
    """Entries keyed by path (no leading slash): (mode, data or symlink target)."""

    entries: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def dir(self, path: str, mode: int = 0o755) -> None:
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in self.entries:
                self.entries[sub] = (stat.S_IFDIR | (mode if i == len(parts) else 0o755), b"")

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self.dir(path.rsplit("/", 1)[0]) if "/" in path else None
        self.entries[path] = (stat.S_IFREG | mode, data)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self.dir(path.rsplit("/", 1)[0]) if "/" in path else None
        self.entries[path] = (stat.S_IFLNK | 0o777, target.encode())

    def write(self, out: BinaryIO) -> None:
        ino = 1
        for name in sorted(self.entries):
            mode, data = self.entries[name]
            _entry(out, name, mode, data, ino)
            ino += 1
        _entry(out, "TRAILER!!!", 0, b"", 0)
        pad = (-out.tell()) % 512
        out.write(b"\0" * pad)


def _entry(out: BinaryIO, name: str, mode: int, data: bytes, ino: int) -> None:
    raw_name = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(mode) else 1
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(raw_name), 0]
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    out.write(header)
    out.write(raw_name)
    out.write(b"\0" * ((-(len(header) + len(raw_name))) % 4))
    out.write(data)
    out.write(b"\0" * ((-len(data)) % 4))


def read(blob: bytes) -> dict[str, tuple[int, bytes]]:
    """The entries of newc archives (the kernel's initramfs format) as path -> (mode, data or
    symlink target), archives one after the other read in order as the kernel unpacks them: a
    later entry replaces an earlier one.  Padding between archives is skipped."""
    entries: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while pos < len(blob):
        if blob[pos] == 0:  # zero padding after an archive's trailer
            pos += 1
            continue
        if blob[pos : pos + 6] not in (b"070701", b"070702"):
            raise ValueError(f"not a newc cpio header at offset {pos}")
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        start = pos + 110
        name = blob[start : start + namesize - 1].decode()
        data_at = start + namesize + (-(110 + namesize)) % 4
        data = blob[data_at : data_at + size]
        pos = data_at + size + (-size) % 4
        if name != "TRAILER!!!":
            entries[name] = (mode, data)
    return entries
