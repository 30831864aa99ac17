"""``make bench``: boot-to-first-command, median of N boots per arch, accelerator named.

Measured from the moment QEMU is spawned to the answer of the first SSH command (`uname -a`).
Kernel and initramfs come from the warm cache and are not part of the figure."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lab.log import stderr_log
from lab.session import prepare
from lab.vm import VM, VMOptions


def boot_to_first_command(arch: str, runs: int, accel: str) -> dict[str, Any]:
    kernel, initramfs = prepare(arch)
    samples: list[float] = []
    used = set()
    for _ in range(runs):
        start = time.monotonic()
        with VM(kernel, initramfs, VMOptions(arch=arch, accel=accel)) as vm:
            result = vm.run("uname -a", timeout=30)
            samples.append(time.monotonic() - start)
            if not result.ok:
                raise RuntimeError(f"uname -a failed in the {arch} guest: {result.stderr}")
            used.add(vm.accel)
    return {
        "arch": arch,
        "accel": "/".join(sorted(used)),
        "runs": runs,
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "samples_s": samples,
        "kernel": kernel.identity,
    }


def bench(arches: list[str], runs: int, out: Path, accel: str) -> int:
    rows = []
    for arch in arches:
        stderr_log(f"bench: {runs} boots of {arch}")
        rows.append(boot_to_first_command(arch, runs, accel))
    table = Table(title=f"boot to first command (median of {runs})")
    for col in ("arch", "accel", "median s", "min s", "max s", "kernel"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["arch"],
            r["accel"],
            f"{r['median_s']:.2f}",
            f"{r['min_s']:.2f}",
            f"{r['max_s']:.2f}",
            r["kernel"],
        )
    Console().print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"host": platform.node(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "boot": rows}
    out.write_text(json.dumps(report, indent=2) + "\n")
    stderr_log(f"bench: results written to {out}")
    return 0
