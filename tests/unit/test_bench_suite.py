"""The suite benchmark's summary: only warm, passed runs count for overhead."""

from __future__ import annotations

from lab.bench_suite import summarise
from lab.scenario.runner import Outcome, Result, StepRecord


def run(name: str, seconds: float, steps: float, booted: bool = False, **kw: object) -> Result:
    r = Result(name, "x86_64", kw.pop("outcome", Outcome.PASSED), seconds, steps, booted=booted)  # type: ignore[arg-type]
    r.steps = [StepRecord(0, "check", True, steps, evidence={"physical_search_s": 0.02})]
    return r


def test_summary() -> None:
    results = [
        run("a", 3.0, 0.5, booted=True),  # includes a boot: not a warm overhead
        run("b", 0.30, 0.20),
        run("c", 0.50, 0.38),
        run("d", 0.40, 0.25),
        run("e", 9.0, 1.0, outcome=Outcome.TIMEOUT),
        run("f", 0.0, 0.0, outcome=Outcome.SKIPPED),
    ]
    s = summarise(results, 12.5, ["x86_64"])
    assert s["boots"] == 1 and s["warm_runs"] == 3 and s["skipped"] == 1
    assert abs(s["warm_overhead_median_s"] - 0.12) < 1e-9
    assert abs(s["warm_overhead_p90_s"] - 0.15) < 1e-9
    assert s["not_passed"] == ["e[x86_64]: timeout"]
    assert s["physical_search_median_s"] == 0.02 and s["physical_searches"] == 6
