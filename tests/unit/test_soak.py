"""remaplab soak: each run's figures (wall, outcome counts, boots, boot retries, every result
that did not pass with its evidence), then the flake rate; a run that breaks is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.cli import main
from lab.scenario.result import Outcome, Result
from lab.soak import RunFigures, SoakSummary, describe, run_once


def res(name: str, outcome: Outcome = Outcome.PASSED, **kw: object) -> Result:
    return Result(name, "x86_64", outcome, log_dir=f"/r/{name}", **kw)  # type: ignore[arg-type]


def figures(index: int, *results: Result, code: int | None = 0) -> RunFigures:
    return RunFigures(index, Path(f"/soak/run-{index:02d}"), 100.0 + index, code, list(results))


def test_run_figures_and_evidence() -> None:
    run = figures(
        2,
        res("a", booted=True, notes=["boot retried: no console output in 30 s"]),
        res("b", Outcome.HANG, message="step 2 ran out of time"),
        res("c", Outcome.SKIPPED),
        code=1,
    )
    lines = describe(run, 3)
    assert lines[0] == (
        "run 2/3: 102.0 s, exit 1, 3 results (1 guest hang, 1 passed, 1 skipped), 1 boots, "
        "1 boot retries"
    )
    assert "  note: a [x86_64]: boot retried: no console output in 30 s" in lines
    assert "  guest hang: b [x86_64]: step 2 ran out of time" in lines
    assert "    evidence: /r/b" in lines


def test_flake_rate_flaky_and_failing() -> None:
    runs = [
        figures(1, res("a"), res("b"), res("c", Outcome.FAILED), code=1),
        figures(2, res("a"), res("b", Outcome.CRASH), res("c", Outcome.FAILED), code=1),
        figures(3, res("a"), res("b"), res("c", Outcome.FAILED), code=1),
        figures(4, res("a"), res("b"), res("c")),
    ]
    summary = SoakSummary(runs)
    lines = summary.lines()
    assert summary.flaky_runs == 3
    assert "flaky scenario runs (verdict changed between runs): b [x86_64], c [x86_64]" in lines
    assert "failing in every run: none" in lines
    assert lines[-1] == (
        "flake rate: 3/4 runs had a result that did not pass or skip (75.0%); "
        "4/12 scenario runs (33.33%)"
    )


def test_a_run_killed_or_without_report_is_not_clean() -> None:
    assert not figures(1, res("a"), code=None).clean
    assert not figures(1, code=0).clean
    assert "no report.json" in describe(figures(1, code=125), 1)[-1]


def test_run_once_of_a_broken_run(tmp_path: Path) -> None:
    run = run_once(1, tmp_path / "run-01", ["--scenarios", str(tmp_path / "none")], 120.0)
    assert run.exit_code == 125 and not run.results and not run.clean
    assert "not a folder" in (tmp_path / "run-01" / "run.log").read_text()


def test_soak_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "soak"
    argv = ["soak", "--runs", "3", "--out", str(out), "--", "--scenarios", str(tmp_path / "x")]
    assert main(argv) == 1
    printed = capsys.readouterr().out
    # A run that cannot start (a bad argument: exit 125, no result) says why and ends the soak.
    assert "run 1/3: " in printed and "run 2/3" not in printed
    assert f"no report.json: see {out / 'run-01' / 'run.log'}: remaplab: " in printed
    assert "not a folder" in printed
    assert "soak stopped: run 1 could not start, the next 2 would not either" in printed
    assert "flake rate: 1/1 runs" in printed
    assert (out / "soak.json").is_file() and (out / "run-01" / "run.log").is_file()
    assert not (out / "run-02").exists()
    assert main(["soak", "--runs", "0"]) == 125
