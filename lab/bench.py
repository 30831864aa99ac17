"""``make bench``: boot-to-first-command (median of N boots per arch, accelerator named), mmap
cost per backing x mapping in the guest, and the scenario suite's wall time and overhead.

Measured from the moment QEMU is spawned to the answer of the first SSH command (`uname -a`).
Kernel and initramfs come from the warm cache and are not part of the figure."""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lab import snapshot
from lab.bench_suite import suite_costs
from lab.bootphases import medians, phases
from lab.combos import combinations, refusal
from lab.errors import LabError
from lab.guest_tools import ctl, ctl_args
from lab.kernel import Kernel
from lab.log import stderr_log
from lab.rootfs import Initramfs
from lab.session import prepare
from lab.steplog import StepLog, recording
from lab.vm import VM, VMOptions


def one_boot(
    kernel: Kernel, initramfs: Initramfs, options: VMOptions
) -> tuple[float, dict[str, float], str]:
    """One boot to the answer of its first command (`uname -a`): the seconds, where they went
    (lab/bootphases.py) and the accelerator used."""
    start = time.monotonic()
    with VM(kernel, initramfs, options) as vm:
        result = vm.run("uname -a", timeout=30)
        seconds = time.monotonic() - start
        if not result.ok:
            raise LabError(f"uname -a failed in the {options.arch} guest: {result.stderr.strip()}")
        dmesg = vm.run("dmesg", timeout=30).stdout  # after the figure: not timed
        times = (vm.ready_seconds, vm.boot_seconds, result.seconds, seconds)
        return seconds, phases(dmesg, *times), vm.accel


def boot_to_first_command(arch: str, runs: int, accel: str) -> dict[str, Any]:
    kernel, initramfs = prepare(arch)
    samples: list[float] = []
    split: list[dict[str, float]] = []
    used = set()
    for _ in range(runs):
        seconds, where, used_accel = one_boot(kernel, initramfs, VMOptions(arch=arch, accel=accel))
        samples.append(seconds)
        split.append(where)
        used.add(used_accel)
    return {
        "arch": arch,
        "accel": "/".join(sorted(used)),
        "runs": runs,
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "samples_s": samples,
        "kernel": kernel.identity,
        "phases_s": medians(split),  # where the seconds go: lab/bootphases.py
    }


def restore_to_first_command(arch: str, runs: int, accel: str) -> dict[str, Any]:
    """From the moment a VM is asked for to the answer of its first command (`uname -a`), when
    it is restored from the boot configuration's snapshot (saved first if missing: not timed);
    SSH, the clock and the module-tree mount included.  phases_s: one restore's step fields."""
    kernel, initramfs = prepare(arch)
    first = VM(kernel, initramfs, VMOptions(arch=arch, accel=accel))
    try:
        snapshot.start(first)
    finally:
        first.stop()
    samples: list[float] = []
    notes: list[str] = []
    phases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="remaplab-bench-") as tmp:
        log = Path(tmp) / "steps.jsonl"
        for _ in range(runs):
            start = time.monotonic()
            vm = VM(kernel, initramfs, VMOptions(arch=arch, accel=accel))
            try:
                with recording(StepLog(log)):
                    snapshot.start(vm, save_missing=False)
                result = vm.run("uname -a", timeout=30)
                samples.append(time.monotonic() - start)
                if not result.ok:
                    raise RuntimeError(f"uname -a failed in the restored {arch} guest")
                notes += vm.boot_notes
            finally:
                vm.stop()
        ends = [json.loads(ln) for ln in log.read_text().splitlines()]
        phases = next((e["fields"] for e in reversed(ends) if e["step"] == "restore"), {})
    return {
        "arch": arch,
        "runs": runs,
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "samples_s": samples,
        "phases_s": {k: v for k, v in phases.items() if k.endswith("_s")},
        "notes": notes,  # a restore that fell back to a boot says so here
    }


BENCH_BYTES = 64 << 20
# A buddy fallback of the DMA API gives at most one MAX_ORDER-1 block (4 MiB with 4K pages).
BUDDY_MAX_PAGES = 1024


def mapping_costs(arch: str, runs: int, accel: str) -> list[dict[str, Any]]:
    """mmap + touch of 64 MiB per backing x mapping, ns per page, median of runs (in-guest)."""
    kernel, initramfs = prepare(arch)
    cma = kernel.config_value("CONFIG_DMA_CMA") == "y"
    append = ("cma=256M",) if cma else ()
    rows: list[dict[str, Any]] = []
    with VM(kernel, initramfs, VMOptions(arch=arch, accel=accel, memory="2G", append=append)) as vm:
        page = int(vm.run("getconf PAGESIZE || echo 4096").stdout.split()[0])
        if not vm.run("modprobe multimap").ok:
            raise RuntimeError(f"modprobe multimap failed in the {arch} guest")
        for backing, mapping in combinations():
            if refusal(backing, mapping, cma):
                continue
            pages = BENCH_BYTES // page
            if backing == "contig" and not cma:
                pages = BUDDY_MAX_PAGES
            samples: list[float] = []
            mmap_ns: list[float] = []
            touch_ns: list[float] = []
            for _ in range(runs):
                report = ctl(vm, [*ctl_args(backing, mapping, pages, list_pages=False), "--bench"])
                if not report.get("ok"):
                    samples = []
                    note = f"{report.get('stage')}: {report.get('errno')}"
                    break
                samples.append(report["timing_ns"]["per_page"])
                mmap_ns.append(report["timing_ns"]["mmap_per_page"])
                touch_ns.append(report["timing_ns"]["touch_per_page"])
            rows.append(
                {
                    "arch": arch,
                    "accel": vm.accel,
                    "backing": backing,
                    "mapping": mapping,
                    "pages": pages,
                    "ns_per_page": statistics.median(samples) if samples else None,
                    "mmap_ns_per_page": statistics.median(mmap_ns) if mmap_ns else None,
                    "touch_ns_per_page": statistics.median(touch_ns) if touch_ns else None,
                    "samples": samples,
                    "note": "" if samples else note,
                }
            )
    return rows


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratio(
    rows: list[dict[str, Any]],
    slow: tuple[str, str],
    fast: tuple[str, str],
    key: str = "mmap_ns_per_page",
) -> float | None:
    def get(b: str, m: str) -> float | None:
        for r in rows:
            if (r["backing"], r["mapping"]) == (b, m) and r[key]:
                return float(r[key])
        return None

    s, f = get(*slow), get(*fast)
    return s / f if s and f else None


def new_table(title: str, *columns: str) -> Table:
    """A rich table with its column headers: every table the benchmark prints."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    return table


def _print_phases(rows: list[dict[str, Any]], runs: int) -> None:
    title = f"where a boot's seconds go (s, median of {runs}; lab/bootphases.py)"
    table = new_table(title, "phase", *(r["arch"] for r in rows))
    for name in medians(r["phases_s"] for r in rows):
        table.add_row(name, *(_fmt(r["phases_s"].get(name), 3) for r in rows))
    Console().print(table)


def _print_tables(
    rows: list[dict[str, Any]],
    maps: list[dict[str, Any]],
    suites: list[dict[str, Any]],
    runs: int,
) -> None:
    table = new_table(
        f"boot to first command (median of {runs})",
        *("arch", "accel", "median s", "min s", "max s", "kernel"),
    )
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
    _print_phases(rows, runs)
    mtable = new_table(
        f"mmap + touch, ns per page (median of {runs}, measured in the guest)",
        *("arch", "accel", "backing", "mapping", "pages", "mmap", "touch", "total"),
    )
    for r in maps:
        cells = [
            f"{r[k]:.0f}" if r[k] else f"n/a ({r['note']})"
            for k in ("mmap_ns_per_page", "touch_ns_per_page", "ns_per_page")
        ]
        mtable.add_row(r["arch"], r["accel"], r["backing"], r["mapping"], str(r["pages"]), *cells)
    Console().print(mtable)
    stable = new_table(
        "scenario suite (warm cache): wall time and per-scenario overhead",
        *("arches", "wall s", "runs", "boots", "warm overhead median s", "p90 s"),
        *("physical search median s", "not passed"),
    )
    for r in suites:
        stable.add_row(
            "+".join(r["arches"]),
            f"{r['wall_s']:.1f}",
            f"{r['runs']} ({r['skipped']} skipped)",
            str(r["boots"]),
            _fmt(r["warm_overhead_median_s"], 3),
            _fmt(r["warm_overhead_p90_s"], 3),
            _fmt(r["physical_search_median_s"], 4),
            ", ".join(r["not_passed"]) or "-",
        )
    Console().print(stable)


def _print_restores(restores: list[dict[str, Any]]) -> None:
    table = new_table(
        "snapshot restore to first command (SSH, clock, module tree included)",
        *("arch", "median s", "min s", "max s", "phases (one run, s since start)"),
    )
    for r in restores:
        phases = ", ".join(f"{k} {v:.3f}" for k, v in r["phases_s"].items())
        table.add_row(
            r["arch"], f"{r['median_s']:.2f}", f"{r['min_s']:.2f}", f"{r['max_s']:.2f}", phases
        )
    Console().print(table)


def bench(arches: list[str], runs: int, out: Path, accel: str) -> int:
    rows = []
    restores: list[dict[str, Any]] = []
    maps: list[dict[str, Any]] = []
    for arch in arches:
        stderr_log(f"bench: {runs} boots of {arch}")
        rows.append(boot_to_first_command(arch, runs, accel))
        stderr_log(f"bench: {runs} snapshot restores of {arch}")
        restores.append(restore_to_first_command(arch, runs, accel))
        stderr_log(f"bench: mapping costs in the {arch} guest")
        maps += mapping_costs(arch, runs, accel)
    stderr_log("bench: the scenario suite, per arch and then all arches in parallel")
    suites = suite_costs(arches, accel)
    _print_tables(rows, maps, suites, runs)
    _print_restores(restores)
    ratios: dict[str, dict[str, float | None]] = {}
    for arch in arches:
        mine = [r for r in maps if r["arch"] == arch]
        ratios[arch] = {}
        for key, label in (("mmap_ns_per_page", "mmap"), ("ns_per_page", "mmap+touch")):
            ratios[arch][f"{label}: remap/pages over remap_runs/contig (target >= 20)"] = _ratio(
                mine, ("pages", "remap"), ("contig", "remap_runs"), key
            )
            ratios[arch][f"{label}: insert_one/pages over insert/pages (target >= 3)"] = _ratio(
                mine, ("pages", "insert_one"), ("pages", "insert"), key
            )
        for name, ratio in ratios[arch].items():
            shown = f"{ratio:.1f}x" if ratio else "n/a"
            stderr_log(f"bench: {arch}: {name}: {shown}")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "host": platform.node(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "boot": rows,
        "restore_to_first_command": restores,
        "mapping": maps,
        "ratios": ratios,
        "suite": suites,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    stderr_log(f"bench: results written to {out}")
    return 0
