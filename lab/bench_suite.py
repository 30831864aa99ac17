"""Scenario-suite figures for ``make bench``: whole-suite wall time per arch (one arch at a time)
and for both arches at once (in parallel, as ``make lab-run`` runs them), per-scenario overhead
on a warm VM (time not spent in the scenario's own steps: health checks, module reload, log
writing), and the guest-physical witness's search time."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lab.log import quiet
from lab.paths import REPO
from lab.scenario.load import load_dir
from lab.scenario.runner import Outcome, Result
from lab.scenario.suite import run_suite


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(results: list[Result], wall: float, arches: list[str]) -> dict[str, Any]:
    warm = [r.overhead for r in results if r.outcome == Outcome.PASSED and not r.booted]
    searches = [
        float(step.evidence["physical_search_s"])
        for r in results
        for step in r.steps
        if "physical_search_s" in (step.evidence or {})
    ]
    return {
        "arches": arches,
        "wall_s": wall,
        "runs": len(results),
        "passed": sum(r.outcome == Outcome.PASSED for r in results),
        "skipped": sum(r.outcome == Outcome.SKIPPED for r in results),
        "not_passed": [
            f"{r.scenario}[{r.arch}]: {r.outcome.value}"
            for r in results
            if r.outcome not in (Outcome.PASSED, Outcome.SKIPPED)
        ],
        "boots": sum(r.booted for r in results),
        "warm_overhead_median_s": statistics.median(warm) if warm else None,
        "warm_overhead_p90_s": _quantile(warm, 0.9),
        "warm_runs": len(warm),
        "physical_search_median_s": statistics.median(searches) if searches else None,
        "physical_searches": len(searches),
    }


def suite_costs(arches: list[str], accel: str) -> list[dict[str, Any]]:
    """One suite run per arch, then one with every arch in parallel."""
    loaded = load_dir(REPO / "scenarios")
    rows = []
    plans = [[a] for a in arches] + ([arches] if len(arches) > 1 else [])
    with tempfile.TemporaryDirectory(prefix="remaplab-bench-") as tmp:
        for n, plan in enumerate(plans):
            start = time.monotonic()
            results = run_suite(loaded, plan, Path(tmp) / str(n), quiet, accel=accel)
            rows.append(summarise(results, time.monotonic() - start, plan))
    return rows
