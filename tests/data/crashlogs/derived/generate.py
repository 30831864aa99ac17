#!/usr/bin/env python3
"""Writes the derived crash-log set beside this file: console logs written from the kernel's
printk formats (6.1 and neighbours) and the titling rules of syzkaller's pkg/report/linux.go,
not recorded and not taken from any corpus.  Each family is written in several console
shapes (bare, timestamped, with a printk caller context and another task's lines mixed in,
CRLF with NUL bytes and invalid UTF-8), each headed by the title syzkaller's rules give it.
Logs without a TITLE header hold no kernel crash (user-space traps, boot noise).

    python3 tests/data/crashlogs/derived/generate.py
"""

from __future__ import annotations

import re
from pathlib import Path

from families import CLEAN, FAMILIES

HERE = Path(__file__).resolve().parent
HEADER = "derived from kernel printk formats and syzkaller's linux.go rules; not a recording"


def _shape(lines: list[str], shape: str) -> list[str]:
    if shape == "bare":
        return lines
    out = []
    for n, line in enumerate(lines):
        ts = f"[  {412 + n * 0.0021:.6f}]"
        if shape == "ts":
            out.append(f"{ts} {line}")
        elif shape == "caller":
            out.append(f"{ts}[ T4242] {line}")
            if n % 5 == 2:  # another task prints in between: never part of the report
                out.append(f"{ts}[  T517] syz-executor: Failed to open /dev/vhost: ENOENT")
        else:  # binary: CRLF, NUL padding, a byte that is not UTF-8
            out.append(f"{ts} {line}")
    return out


def _encode(lines: list[str], shape: str) -> bytes:
    text = "\n".join(lines) + "\n"
    if shape != "binary":
        return text.encode()
    raw = text.replace("\n", "\r\n").encode()
    return b"\0\0\0" + raw.replace(b"Call Trace", b"\xff\xfeCall Trace", 1) + b"\0" * 8


def _noise() -> list[str]:
    return [
        "random: crng init done",
        "IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready",
        "traps: a.out[311] general protection fault ip:7f3a12b4c2d1 sp:7ffd9a1c2e80 error:0 in"
        " libc.so.6[7f3a12b25000+155000]",
    ]


def write(name: str, title: str | None, body: str, shapes: tuple[str, ...]) -> int:
    lines = [ln for ln in body.strip("\n").split("\n")]
    count = 0
    for shape in shapes:
        log = _noise() + lines
        text = _shape(log, shape)
        head = (f"TITLE: {title}\n" if title else "") + f"DERIVED: {HEADER}\n\n"
        if title is None:
            head = ""  # no header at all: no crash
        (HERE / f"{name}-{shape}.log").write_bytes(head.encode() + _encode(text, shape))
        count += 1
    return count


def main() -> None:
    for old in HERE.glob("*.log"):
        old.unlink()
    total = 0
    for name, title, body in FAMILIES:
        shapes = ("bare", "ts", "caller", "binary")
        if re.search(r"Booting the kernel", body):
            shapes = ("ts", "binary")  # a reboot is told by the kernel output before it
        total += write(name, title, body, shapes)
    for name, body in CLEAN:
        total += write(name, None, body, ("bare", "ts", "binary"))
    print(f"wrote {total} logs to {HERE}")


if __name__ == "__main__":
    main()
