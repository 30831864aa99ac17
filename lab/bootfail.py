"""What a boot that failed says: its message, from the console, QEMU's stderr and how QEMU
ended, always naming both files (they are kept with the failed VM's folder)."""

from __future__ import annotations

import re
from pathlib import Path

PANIC = re.compile(r"Kernel panic - not syncing:[^\n]*")
INIT_FAILED = re.compile(r"remaplab: init failed: ([^\n]*)")


def read_stderr(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def evidence(console_log: Path, qemu_stderr: Path) -> str:
    return f"console log: {console_log}; QEMU stderr: {qemu_stderr}"


def explain_exit(
    arch: str, text: str, last_line: str, ended: str, console_log: Path, qemu_stderr: Path
) -> str:
    """QEMU exited before the guest was ready: a panic or an init failure on the console (text:
    console and stderr), else how QEMU ended and the last thing it said; both files named."""
    files = f" ({evidence(console_log, qemu_stderr)})"
    if m := PANIC.search(text):
        return f"{arch} kernel panicked during boot: {m.group(0).strip()}{files}"
    if m := INIT_FAILED.search(text):
        return f"{arch} guest init failed: {m.group(1).strip()}{files}"
    said = [ln.strip() for ln in read_stderr(qemu_stderr).splitlines() if ln.strip()]
    return (
        f"QEMU exited ({ended}) before the {arch} guest was ready; "
        f"last console line: {last_line!r}" + (f"; QEMU said: {said[-1]!r}" if said else "") + files
    )
