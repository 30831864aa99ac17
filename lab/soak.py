"""`remaplab soak` (`make soak`): N consecutive full runs of `remaplab run`, each a child
process bounded in time, its figures printed as it ends (wall time, outcome counts, boots, boot
retries from the results' notes, every result that did not pass or skip with its evidence),
then the flake rate: the share of runs with any such result, the share of scenario runs, and
which scenarios changed their verdict between runs (flaky) or never passed (failing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab import reaper
from lab.readfile import last_line
from lab.scenario.report import read_results
from lab.scenario.result import Result

RUN_TIMEOUT_S = 3600.0  # one full run of both arches took ~10 min here (TCG, 2 cores)
STOP_WAIT_S = 30.0  # after SIGTERM: the run's own bounded stop (STOP_GRACE_S) and its reports
Print = Callable[[str], None]


@dataclass
class RunFigures:
    index: int
    folder: Path
    wall_s: float
    exit_code: int | None  # None: killed after its time limit
    results: list[Result] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.outcome.value for r in self.results)

    @property
    def boots(self) -> int:
        return sum(r.booted for r in self.results)

    @property
    def boot_retries(self) -> list[str]:
        return [f"{r.scenario} [{r.arch}]: {n}" for r in self.results for n in r.notes]

    @property
    def bad(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    @property
    def clean(self) -> bool:
        return self.exit_code == 0 and not self.bad and bool(self.results)


def run_once(index: int, folder: Path, run_args: list[str], timeout: float) -> RunFigures:
    """One `remaplab run --out folder RUN_ARGS` in a child process (its output in
    folder/run.log), killed after timeout; SIGTERM to it on Ctrl-C or SIGTERM (bounded, then
    re-raised), and from the kernel if the soak dies."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "lab.cli", "run", "--out", str(folder), *run_args]
    start = time.monotonic()
    code: int | None
    reaper.install()  # SIGTERM/SIGHUP of the soak: SystemExit, handled below like Ctrl-C
    with (folder / "run.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            # a soak killed outright (SIGKILL) still takes its run down, reports written
            preexec_fn=reaper.make_preexec(os.getpid(), death_signal=signal.SIGTERM),
            # its own session: a signal to the soak's process group (a terminal's Ctrl-C,
            # `timeout`, a CI cancel) reaches the run once, from the soak, not twice
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            code = None
        except (KeyboardInterrupt, SystemExit):
            _stop(proc)
            raise
    figures = RunFigures(index, folder, time.monotonic() - start, code)
    if (folder / "report.json").is_file():
        figures.results = read_results(folder)[0]
    return figures


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the run stops within its grace and writes its reports), then SIGKILL."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_WAIT_S)


def describe(run: RunFigures, total: int) -> list[str]:
    """A run's figures as lines: one summary line, then every retry and non-passing result."""
    status = "timed out (killed)" if run.exit_code is None else f"exit {run.exit_code}"
    counts = ", ".join(f"{n} {o}" for o, n in sorted(run.counts.items())) or "no results"
    lines = [
        f"run {run.index}/{total}: {run.wall_s:.1f} s, {status}, {len(run.results)} results "
        f"({counts}), {run.boots} boots, {len(run.boot_retries)} boot retries"
    ]
    lines += [f"  note: {note}" for note in run.boot_retries]
    for r in run.bad:
        bundle = Path(r.log_dir) / "bundle"
        where = f"evidence: {r.log_dir}" + (f", bundle: {bundle}" if bundle.is_dir() else "")
        lines.append(f"  {r.outcome.value}: {r.scenario} [{r.arch}]: {r.message}")
        lines.append(f"    {where}")
    if not run.results:
        said = last_line(run.folder / "run.log")
        lines.append(
            f"  no report.json: see {run.folder / 'run.log'}" + (f": {said}" if said else "")
        )
    return lines


def could_not_start(run: RunFigures) -> bool:
    """The run ended at once on a bad argument (2) or a lab error (125) with no result: every
    further run would end the same way."""
    return not run.results and run.exit_code in (2, 125)


@dataclass
class SoakSummary:
    runs: list[RunFigures]

    @property
    def flaky_runs(self) -> int:
        return sum(not r.clean for r in self.runs)

    def verdicts(self) -> dict[tuple[str, str], list[bool]]:
        out: dict[tuple[str, str], list[bool]] = {}
        for run in self.runs:
            for r in run.results:
                out.setdefault((r.scenario, r.arch), []).append(r.ok)
        return out

    def lines(self) -> list[str]:
        n = len(self.runs)
        results = [r for run in self.runs for r in run.results]
        bad = sum(not r.ok for r in results)
        verdicts = self.verdicts()
        flaky = sorted(f"{s} [{a}]" for (s, a), v in verdicts.items() if any(v) and not all(v))
        failing = sorted(f"{s} [{a}]" for (s, a), v in verdicts.items() if not any(v))
        walls = sorted(r.wall_s for r in self.runs)
        return [
            f"soak: {n} runs, wall {min(walls):.0f}-{max(walls):.0f} s "
            f"(median {walls[n // 2]:.0f} s), {sum(r.boots for r in self.runs)} boots, "
            f"{sum(len(r.boot_retries) for r in self.runs)} boot retries",
            f"flaky scenario runs (verdict changed between runs): {', '.join(flaky) or 'none'}",
            f"failing in every run: {', '.join(failing) or 'none'}",
            f"flake rate: {self.flaky_runs}/{n} runs had a result that did not pass or skip "
            f"({100.0 * self.flaky_runs / n:.1f}%); {bad}/{len(results)} scenario runs "
            f"({100.0 * bad / max(1, len(results)):.2f}%)",
        ]

    def as_dict(self) -> dict[str, object]:
        return {
            "runs": [
                {
                    "folder": str(r.folder),
                    "wall_s": round(r.wall_s, 1),
                    "exit_code": r.exit_code,
                    "counts": dict(r.counts),
                    "boots": r.boots,
                    "boot_retries": r.boot_retries,
                    "bad": [f"{b.scenario} [{b.arch}]: {b.outcome.value}" for b in r.bad],
                }
                for r in self.runs
            ],
            "flaky_runs": self.flaky_runs,
            "summary": self.lines(),
        }


def soak(runs: int, run_args: list[str], out: Path, timeout: float, say: Print) -> SoakSummary:
    """runs consecutive runs into out/run-NN; figures printed as each ends; the summary (also
    out/soak.json) at the end, or of the runs that finished when Ctrl-C stops it."""
    summary = SoakSummary([])
    try:
        for i in range(1, runs + 1):
            folder = out / f"run-{i:02d}"
            say(f"run {i}/{runs}: remaplab run {' '.join(run_args)} (log: {folder / 'run.log'})")
            summary.runs.append(run_once(i, folder, run_args, timeout))
            for line in describe(summary.runs[-1], runs):
                say(line)
            if could_not_start(summary.runs[-1]) and i < runs:
                say(f"soak stopped: run {i} could not start, the next {runs - i} would not either")
                break
    finally:
        if summary.runs:
            for line in summary.lines():
                say(line)
            (out / "soak.json").write_text(json.dumps(summary.as_dict(), indent=1) + "\n")
    return summary
