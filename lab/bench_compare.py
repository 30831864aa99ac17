"""``remaplab bench --compare-append/--compare-qemu-arg``: does a boot option change the time to
the first command?  A (the lab's boot) and B (the same with the extras) boot in interleaved
pairs, A first in even pairs and B first in odd ones, because this host's speed drifts by 30%
within an hour and 1.8x between days: only differences within a pair mean anything.  Reported:
both medians, the median of the per-pair differences (B - A), how many pairs B was faster in,
and a two-sided sign test on that count (the chance of a split at least this uneven if the
option changed nothing)."""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from lab.bench import new_table, one_boot
from lab.bootphases import medians
from lab.errors import LabError
from lab.log import stderr_log
from lab.session import prepare
from lab.vm import VMOptions


def sign_test_p(wins: int, pairs: int) -> float:
    """Two-sided sign test: the probability, with each pair a fair coin, of a split at least as
    uneven as wins out of pairs (ties left out by the caller)."""
    if not 0 <= wins <= pairs:
        raise ValueError(f"{wins} wins out of {pairs} pairs")
    if pairs == 0:
        return 1.0
    tail = min(wins, pairs - wins)
    tail_count = sum(math.comb(pairs, k) for k in range(tail + 1))
    return min(1.0, 2 * tail_count / (1 << pairs))  # ints divide exactly: no overflow at any n


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """The comparison of two equally long lists of seconds, pair by pair."""
    if len(a) != len(b) or not a:
        raise ValueError("paired samples need the same, non-zero length")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    faster = sum(d < 0 for d in diffs)
    slower = sum(d > 0 for d in diffs)
    return {
        "pairs": len(a),
        "a_median_s": statistics.median(a),
        "b_median_s": statistics.median(b),
        "median_diff_s": statistics.median(diffs),
        "b_faster_pairs": faster,
        "b_slower_pairs": slower,
        "sign_test_p": sign_test_p(faster, faster + slower),
    }


def compare_boots(
    arch: str, pairs: int, accel: str, append: tuple[str, ...], qemu_args: tuple[str, ...]
) -> dict[str, Any]:
    kernel, initramfs = prepare(arch)
    extras = [*append, *qemu_args]
    base = VMOptions(arch=arch, accel=accel)
    variants = {"a": base, "b": replace(base, append=append, qemu_args=qemu_args)}
    times: dict[str, list[float]] = {"a": [], "b": []}
    split: dict[str, list[dict[str, float]]] = {"a": [], "b": []}
    used = set()
    for i in range(pairs):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            try:
                seconds, where, used_accel = one_boot(kernel, initramfs, variants[side])
            except LabError as exc:  # named, keeping its kind (a timeout exits as one)
                what = "A (the lab's boot)" if side == "a" else f"B (+ {' '.join(extras)})"
                exc.args = (f"bench --compare: {arch} pair {i + 1}, {what}: {exc}",)
                raise
            times[side].append(seconds)
            split[side].append(where)
            used.add(used_accel)
        stderr_log(
            f"bench: {arch} pair {i + 1}/{pairs}: "
            f"A {times['a'][-1]:.2f} s, B {times['b'][-1]:.2f} s"
        )
    return {
        "arch": arch,
        "accel": "/".join(sorted(used)),
        "b_append": list(append),
        "b_qemu_args": list(qemu_args),
        "a_samples_s": times["a"],
        "b_samples_s": times["b"],
        # where each side's seconds went (medians, lab/bootphases.py): which phase B changed
        "a_phases_s": medians(split["a"]),
        "b_phases_s": medians(split["b"]),
        **paired(times["a"], times["b"]),
    }


def print_comparison(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    extras = " ".join([*rows[0]["b_append"], *rows[0]["b_qemu_args"]])
    table = new_table(
        f"boot to first command, A: the lab's boot, B: + {extras}",
        *("arch", "accel", "pairs", "A median s", "B median s", "B - A median s"),
        *("B faster / slower", "p (sign test)"),
    )
    for r in rows:
        table.add_row(
            r["arch"],
            r["accel"],
            str(r["pairs"]),
            f"{r['a_median_s']:.3f}",
            f"{r['b_median_s']:.3f}",
            f"{r['median_diff_s']:+.3f}",
            f"{r['b_faster_pairs']}/{r['b_slower_pairs']}",
            f"{r['sign_test_p']:.2f}",
        )
    Console().print(table)


def compare(
    arches: list[str],
    pairs: int,
    out: Path,
    accel: str,
    append: tuple[str, ...],
    qemu_args: tuple[str, ...],
) -> int:
    rows: list[dict[str, Any]] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    for arch in arches:
        stderr_log(f"bench: {pairs} interleaved pairs of {arch} boots (A, then B with the extras)")
        rows.append(compare_boots(arch, pairs, accel, append, qemu_args))
        report = {"host": platform.node(), "when": when, "boot_compare": rows}
        out.write_text(json.dumps(report, indent=2) + "\n")  # each arch's as it ends
    print_comparison(rows)
    stderr_log(f"bench: results written to {out}")
    return 0
