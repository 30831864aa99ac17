"""Where one boot's seconds go, from the host's clock and the guest's kernel log.

The host knows when QEMU was spawned, when the console said ``remaplab: ready``, when SSH
answered and when the first command returned.  The guest's kernel log knows, on the kernel's
clock, when ``/init`` ran and when it (``rootfs/init.c``) passed each of its ``remaplab: at
NAME`` milestones.  The two clocks meet at the readiness line (printed right after the last
milestone): what the host waited before the kernel's clock reached that point is QEMU's start,
the firmware and the kernel before its clock started (printk stamps 0 until then)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from itertools import pairwise

_STAMP = r"^\[\s*(\d+\.\d+)\]\s"
_INIT = re.compile(_STAMP + r"Run /init as init process", re.M)
_MARK = re.compile(_STAMP + r"remaplab: at (\S+)\s*$", re.M)

BEFORE_CLOCK = "qemu, firmware, kernel before its clock"
KERNEL = "kernel to /init"


def guest_marks(dmesg: str) -> list[tuple[str, float]]:
    """[("/init", t), (milestone, t)...] on the kernel's clock, in log order; [] when the log
    has no ``Run /init`` line (a kernel that does not say it, or a log that wrapped)."""
    init = _INIT.search(dmesg)
    if init is None:
        return []
    return [("/init", float(init.group(1)))] + [
        (m.group(2), float(m.group(1))) for m in _MARK.finditer(dmesg)
    ]


def phases(
    dmesg: str, ready_s: float, boot_s: float, command_s: float, total_s: float
) -> dict[str, float]:
    """Durations in seconds, in boot order.  ready_s: QEMU spawned -> readiness line seen;
    boot_s: QEMU spawned -> SSH answered (the boot's own check of the console included), both
    from the boot step; command_s: the first command; total_s: the whole figure, from the moment
    the VM was asked for (what precedes the spawn is "host setup").  Without guest milestones
    only the host's phases are given."""
    out: dict[str, float] = {"host setup": total_s - boot_s - command_s}
    marks = guest_marks(dmesg)
    if marks:
        out[BEFORE_CLOCK] = ready_s - marks[-1][1]
        out[KERNEL] = marks[0][1]
        for (prev, t0), (name, t1) in pairwise(marks):
            out[f"{prev} -> {name}"] = t1 - t0
    else:
        out["spawn -> ready line"] = ready_s
    out["ssh connect"] = boot_s - ready_s
    out["first command"] = command_s
    return {k: round(v, 3) for k, v in out.items()}


def medians(runs: Iterable[dict[str, float]]) -> dict[str, float]:
    """Per phase, the median over the runs that have it; in the first run's order."""
    runs = list(runs)
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run if k not in keys]
    return {k: round(statistics.median(r[k] for r in runs if k in r), 3) for k in keys}
