"""The kernel's health around a scenario: taint, multimap's live stats, MemAvailable.

The guest commands that measure it are here, and judge() decides from the measurements alone
(no VM), so every rule is unit-tested."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from lab.guest_tools import STATS, parse_stats
from lab.scenario.oracles import taint_flags
from lab.scenario.result import Outcome
from lab.scenario.schema import Scenario

TAINT = "cat /proc/sys/kernel/tainted"
MEMINFO = "sync; echo 3 > /proc/sys/vm/drop_caches; cat /proc/meminfo"
# mm/kasan/quarantine.c: generic KASAN keeps freed slab objects back in a quarantine of up to
# 1/32 of RAM (a 3 GiB arm64 guest was 63 MB short after a 1 GiB hugetlb page came and went,
# nothing leaked); kmem_cache_shrink() empties a cache's share of it (kasan_cache_shrink()),
# and every cache's sysfs `shrink` calls it.  Done before MemAvailable is read on such kernels.
DRAIN_QUARANTINE = 'for f in /sys/kernel/slab/*/shrink; do echo 1 > "$f"; done 2>/dev/null; '


def meminfo_command(kasan_generic: bool) -> str:
    """MEMINFO, first emptying generic KASAN's quarantine on a kernel that has one."""
    return (DRAIN_QUARANTINE if kasan_generic else "") + MEMINFO


# insmod of the known path: multimap has no dependencies, and busybox modprobe parsing the
# distro's modules.dep costs ~20 ms under arm64 TCG.
INSMOD = "insmod /lib/modules/$(uname -r)/extra/multimap.ko"
LIVE_STATS = ("buffers", "pages", "vmas", "files")


def module_args(params: dict[str, int | str]) -> str:
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in params.items())


def load_command(params: dict[str, int | str]) -> str:
    """(Re)load multimap with params; its messages on stdout."""
    return f"rmmod multimap 2>/dev/null; {INSMOD} {module_args(params)} 2>&1"


def parse_meminfo(out: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+)", out, re.M)}


def parse_taint(out: str) -> int:
    return int(out.strip() or 0)


@dataclass(frozen=True)
class Figures:
    """Taint and meminfo at one moment."""

    taint: int
    meminfo: dict[str, int]


@dataclass(frozen=True)
class After:
    """What the after-scenario round trip measured."""

    figures: Figures
    stats: dict[str, int] | None  # multimap's debugfs stats, when checked
    rmmod_ok: bool = True
    rmmod_output: str = ""


@dataclass(frozen=True)
class Problem:
    outcome: Outcome
    message: str


def judge(scenario: Scenario, before: Figures, after: After) -> Problem | None:
    """The first health rule the scenario breaks, or None: multimap's live stats back to zero
    and it unloads; no new taint and MemAvailable within tolerance (clean kernels only)."""
    if after.stats is not None:
        live = {k: after.stats.get(k, 0) for k in LIVE_STATS}
        if any(live.values()):
            return Problem(Outcome.FAILED, f"multimap not back to zero: {live}")
        if not after.rmmod_ok:
            return Problem(Outcome.FAILED, f"rmmod after the scenario: {after.rmmod_output}")
    if scenario.expect.kernel != "clean":
        return None
    bad = taint_flags(before.taint, after.figures.taint)
    if bad:
        return Problem(Outcome.CRASH, f"kernel newly tainted: {', '.join(bad)}")
    lost = before.meminfo.get("MemAvailable", 0) - after.figures.meminfo.get("MemAvailable", 0)
    if lost > scenario.expect.meminfo_tolerance_kb:
        tolerance = scenario.expect.meminfo_tolerance_kb
        return Problem(
            Outcome.FAILED, f"MemAvailable dropped by {lost} kB (> {tolerance} kB tolerance)"
        )
    return None


def checks_module(scenario: Scenario) -> bool:
    return scenario.module.load and scenario.expect.stats_zero


def after_commands(scenario: Scenario, kasan_generic: bool = False) -> list[str]:
    """The after-scenario round trip: stats, rmmod, taint, meminfo (see parse_after)."""
    check = checks_module(scenario)
    return [
        STATS if check else "true",
        "rmmod multimap 2>&1" if check else "true",
        TAINT,
        meminfo_command(kasan_generic),
    ]


def parse_after(scenario: Scenario, outputs: list[tuple[str, bool]]) -> After:
    """after_commands()' outputs, (text, exit status 0) each, as measurements."""
    (stats, _), (rmmod, rmmod_ok), (taint, _), (meminfo, _) = outputs
    check = checks_module(scenario)
    return After(
        Figures(parse_taint(taint), parse_meminfo(meminfo)),
        parse_stats(stats) if check else None,
        rmmod_ok or not check,
        rmmod.strip(),
    )
