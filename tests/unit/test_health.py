"""The health rules after a scenario, judged from recorded guest output."""

from __future__ import annotations

from pathlib import Path

from lab.scenario.health import MEMINFO as MEMINFO_CMD
from lab.scenario.health import (
    After,
    Figures,
    after_commands,
    judge,
    meminfo_command,
    parse_after,
)
from lab.scenario.load import load_text
from lab.scenario.result import Outcome
from lab.scenario.schema import Scenario

SCENARIO = """name: demo
description: d
steps: [{run: {command: 'true'}}]
"""
MEMINFO = "MemTotal:        1000000 kB\nMemFree:          500000 kB\nMemAvailable:     {} kB\n"
STATS = "buffers 0\npages 0\nvmas 0\nfiles 0\nmap_errors 0\nbug_mode none\n"


def scenario(extra: str = "") -> Scenario:
    return load_text(SCENARIO + extra, Path("demo.yaml"))


def after(
    taint: str = "0",
    avail: int = 800000,
    stats: str = STATS,
    rmmod: tuple[str, bool] = ("", True),
) -> After:
    s = scenario()
    outputs = [(stats, True), rmmod, (taint + "\n", True), (MEMINFO.format(avail), True)]
    assert len(outputs) == len(after_commands(s))
    return parse_after(s, outputs)


BEFORE = Figures(0, {"MemAvailable": 800000})


def test_healthy() -> None:
    assert judge(scenario(), BEFORE, after()) is None


def test_live_buffers_left_behind() -> None:
    p = judge(scenario(), BEFORE, after(stats=STATS.replace("vmas 0", "vmas 2")))
    assert p is not None and p.outcome == Outcome.FAILED and "'vmas': 2" in p.message


def test_rmmod_refused() -> None:
    p = judge(scenario(), BEFORE, after(rmmod=("rmmod: can't unload module: in use", False)))
    assert p is not None and p.outcome == Outcome.FAILED and "in use" in p.message


def test_new_taint_is_a_crash() -> None:
    p = judge(scenario(), BEFORE, after(taint="512"))  # TAINT_WARN
    assert p is not None and p.outcome == Outcome.CRASH and "W" in p.message


def test_memory_lost_beyond_tolerance() -> None:
    p = judge(scenario(), BEFORE, after(avail=800000 - 9000))
    assert p is not None and "dropped by 9000 kB" in p.message
    assert judge(scenario(), BEFORE, after(avail=800000 - 8000)) is None


def test_a_generic_kasan_kernel_empties_its_quarantine_before_memory_is_read() -> None:
    """mm/kasan/quarantine.c keeps freed objects back (up to RAM/32): every cache's sysfs
    shrink empties its share first, on such kernels only; the tolerance stays the scenario's."""
    plain, kasan = after_commands(scenario())[-1], after_commands(scenario(), True)[-1]
    assert plain == MEMINFO_CMD and not plain.startswith("for f in")
    assert kasan.startswith('for f in /sys/kernel/slab/*/shrink; do echo 1 > "$f"; done')
    assert kasan.endswith(MEMINFO_CMD) and kasan == meminfo_command(True)


def test_crash_expecting_scenarios_skip_taint_and_memory() -> None:
    s = scenario("expect: {kernel: {kind: BUG}, stats_zero: false}\n")
    lost = After(Figures(512, {"MemAvailable": 1}), None)
    assert judge(s, BEFORE, lost) is None


def test_without_the_module_its_stats_are_not_read() -> None:
    s = scenario("module: {load: false}\n")
    parsed = parse_after(s, [("", True), ("", False), ("0", True), (MEMINFO.format(1), True)])
    assert parsed.stats is None and parsed.rmmod_ok
