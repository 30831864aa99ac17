"""``remaplab report merge|durations`` (the reports of shards run on several machines) and
``remaplab soak`` (N consecutive runs and their flake rate)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.limits import MAX_RUNS, count, seconds
from lab.log import stderr_log


def cmd_merge(args: argparse.Namespace, _command: list[str]) -> int:
    from rich.console import Console

    from lab.scenario.report import merge_results, write_json, write_junit
    from lab.scenario.suite import summary_table

    for folder in args.folders:
        if not folder.exists():
            raise LabError(f"{folder}: no such folder")
    merged = merge_results(args.folders)
    if not merged.results:
        raise LabError(f"no results in {', '.join(map(str, args.folders))}")
    console = Console()
    table = summary_table(merged.results, merged.arches, merged.wall_s)
    table.title = f"remaplab: {len(merged.results)} runs merged from {len(args.folders)} reports"
    console.print(table)
    if merged.duplicates:
        shown = "; ".join(merged.duplicates[:5]) + ("; ..." if len(merged.duplicates) > 5 else "")
        stderr_log(
            f"{len(merged.duplicates)} results in more than one report (kept the one that did "
            f"not pass, if any; all in report.json's duplicates): {shown}"
        )
    kernels = merged.meta.get("kernels", {})
    assert isinstance(kernels, dict)
    for arch, names in kernels.items():
        if len(names) > 1:
            stderr_log(f"the {arch} runs were on {len(names)} kernels: {'; '.join(names)}")
    bad = [r for r in merged.results if not r.ok]
    for r in bad:
        print(f"{r.outcome.value}: {r.scenario} [{r.arch}]: {r.message}", file=sys.stderr)
        if r.log_dir:
            print(f"  evidence: {r.log_dir}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    write_junit(merged.results, args.out / "junit.xml")
    write_json(merged.results, args.out / "report.json", merged.meta)
    counts = {o: sum(r.outcome.value == o for r in merged.results) for o in ("passed", "skipped")}
    print(
        f"merged: {len(merged.results)} runs, {counts['passed']} passed, "
        f"{counts['skipped']} skipped, {len(bad)} not passed; "
        f"reports: {args.out / 'junit.xml'}, {args.out / 'report.json'}"
    )
    return 1 if bad else 0


def cmd_durations(args: argparse.Namespace, _command: list[str]) -> int:
    """Store the scenario runs' seconds of remaplab run reports in the durations file, under
    their pytest node ids (what --shard and pytest --splits read)."""
    from lab.paths import REPO
    from lab.scenario.report import read_results
    from lab.shard import DURATIONS_FILE, node_id, shard_root, update_durations

    folder = args.scenarios or REPO / "scenarios"
    root = shard_root(folder)
    measured: list[tuple[str, float]] = []
    for report in args.folders:
        for r in read_results(report)[0]:
            if r.arch and r.outcome.value != "skipped":
                path = folder / f"{r.scenario}.yaml"
                measured.append((node_id(path, r.scenario, r.arch, root), r.seconds))
    path = args.durations or REPO / DURATIONS_FILE
    count = update_durations(path, measured)
    print(f"{path}: {count} durations stored")
    return 0


def cmd_soak(args: argparse.Namespace, command: list[str]) -> int:
    from lab.soak import soak

    count("--runs", args.runs, MAX_RUNS)
    seconds("--run-timeout", args.run_timeout)
    out = args.out or Path("results") / time.strftime("soak-%Y%m%d-%H%M%S")

    def say(line: str) -> None:
        print(line, flush=True)  # each run's figures as it ends, even into a pipe or a file

    summary = soak(args.runs, command, out, args.run_timeout, say)
    return 0 if summary.flaky_runs == 0 else 1


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="merge the reports of shards; store durations")
    # the same parser class as the top level (a usage error is one line, exit 2)
    actions = report.add_subparsers(
        dest="report_cmd", required=True, parser_class=sub._parser_class
    )
    merge = actions.add_parser(
        "merge",
        help="merge run folders (report.json, else junit.xml) into one summary; exit 1 if "
        "any result did not pass or skip",
    )
    merge.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    merge.add_argument(
        "--out",
        type=Path,
        default=Path("results") / "merged",
        help="where the merged report.json and junit.xml go (default results/merged)",
    )
    merge.set_defaults(func=cmd_merge)
    durations = actions.add_parser(
        "durations",
        help="store the scenario runs' seconds of run folders in .test_durations "
        "(what --shard and pytest --splits read)",
    )
    durations.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    durations.add_argument("--durations", type=Path, metavar="FILE")
    durations.add_argument("--scenarios", type=Path, help="scenario folder (default scenarios/)")
    durations.set_defaults(func=cmd_durations)
    soak = sub.add_parser(
        "soak",
        help="N consecutive runs of `remaplab run [-- RUN_ARGS]`: each run's figures, "
        "then the flake rate; exit 1 if any run had a result that did not pass or skip",
    )
    soak.add_argument("--runs", type=int, default=20, help="how many runs (default 20)")
    soak.add_argument("--out", type=Path, help="folder of the runs (default results/soak-TIME)")
    soak.add_argument(
        "--run-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="one run is stopped after this long and counted as not clean (default 3600)",
    )
    soak.set_defaults(func=cmd_soak)
