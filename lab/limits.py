"""The bounds of what a user may ask for on the command line or in a scenario: counts, times and
guest sizes.  Far above any real use, so that a slip of the keyboard (``--runs 999999999999``,
``--memory 0``, ``--jobs 99999``) is refused at once with the bound in the message, instead of
failing later in QEMU, filling the host, or running for ever.  A refusal is a LabError (exit
125, one line naming the option)."""

from __future__ import annotations

import math
import re

from lab.errors import LabError, shown

MAX_JOBS = 64  # VMs per arch at once (run --jobs, reproduce --vms)
MAX_RUNS = 10_000  # repetitions (reproduce, bisect, soak, bench --runs)
MAX_SHARDS = 1_000  # run --shard K/N, report merge
MAX_BUILD_JOBS = 1_024  # kernel build --jobs (make -j)
MAX_SMP = 8  # guest CPUs
MIN_MEMORY_MIB = 128
MAX_MEMORY_MIB = 64 * 1024
MAX_SECONDS = 7 * 86_400  # any timeout
MEMORY = re.compile(r"[0-9]{1,9}[MG]")  # the whole value (fullmatch: no trailing newline)


def count(option: str, value: int, high: int, low: int = 1) -> int:
    """value when low <= value <= high, else a LabError naming option and the bounds."""
    if not low <= value <= high:
        raise LabError(f"{option} must be from {low} to {high}, not {value}")
    return value


def seconds(option: str, value: float, high: float = MAX_SECONDS) -> float:
    """A positive, finite time of at most high seconds."""
    if not (math.isfinite(value) and 0 < value <= high):
        raise LabError(f"{option} must be more than 0 and at most {high:g} seconds, not {value:g}")
    return value


def memory_problem(value: str) -> str | None:
    """What is wrong with a guest memory size such as 512M or 2G (None: nothing)."""
    if not MEMORY.fullmatch(value):
        return f"{shown(value)} is no memory size: a number of MiB or GiB such as 512M or 2G"
    mib = int(value[:-1]) * (1024 if value.endswith("G") else 1)
    if not MIN_MEMORY_MIB <= mib <= MAX_MEMORY_MIB:
        return f"{value} is outside {MIN_MEMORY_MIB}M .. {MAX_MEMORY_MIB // 1024}G of guest memory"
    return None


def memory(option: str, value: str) -> str:
    """value when it is a guest memory size the lab accepts, else a LabError naming option."""
    problem = memory_problem(value)
    if problem is not None:
        raise LabError(f"{option}: {problem}")
    return value
