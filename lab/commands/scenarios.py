"""``remaplab run``, ``repro`` and ``schema``: scenarios, their bundles, their format."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.commands import chosen_arches, kernel_spec
from lab.errors import LabError
from lab.kernel.spec import KernelSpec, add_kernel_args
from lab.limits import MAX_JOBS, count, seconds
from lab.log import stderr_log

if TYPE_CHECKING:
    from lab.scenario.load import Loaded


def _load_files(files: list[Path]) -> list[Loaded]:
    from lab.scenario.load import ScenarioError, load_file

    out = []
    for f in files:
        if not f.exists() and "/" not in str(f):
            raise ScenarioError(
                f"{f}: no such file (a scenario of the folder is named without .yaml)"
            )
        out.append(load_file(f))
    return _unique(out)


def _unique(loaded: list[Loaded]) -> list[Loaded]:
    """Each file once; two different files of one name are refused (they would share the
    result folder NAME-ARCH)."""
    seen: dict[str, Loaded] = {}
    for item in loaded:
        name = item.scenario.name
        other = seen.setdefault(name, item)
        if other.path.resolve() != item.path.resolve():
            raise LabError(f"two scenarios named {name!r}: {other.path} and {item.path}")
    return list(seen.values())


def cmd_run(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.paths import REPO
    from lab.scenario.load import load_dir, select
    from lab.scenario.suite import Interrupted, run_suite

    directory = args.scenarios or REPO / "scenarios"
    # A SCENARIO that names a file (NAME.yaml, a path) is that file; others are names in the
    # folder.  Every file is validated before any boot.
    is_file = [n.endswith((".yaml", ".yml")) or "/" in n for n in args.names]
    names = [n for n, f in zip(args.names, is_file, strict=True) if not f]
    loaded = _load_files([Path(n) for n, f in zip(args.names, is_file, strict=True) if f])
    if args.scenarios is not None and loaded and not names:
        stderr_log(f"--scenarios {args.scenarios} is not read: only scenario files were given")
    if names or not loaded:
        if not directory.is_dir():
            raise LabError(f"--scenarios {directory}: not a folder")
        loaded = _unique(select(load_dir(directory), names) + loaded)
    if not loaded:
        raise LabError(f"no scenario files (*.yaml) in {directory}")
    arches = chosen_arches(args)  # an unknown --arch is refused, --list included
    only, meta = _shard(args, loaded, arches)
    if args.list:
        _list(loaded, arches, only)
        return 0
    count("--jobs", args.jobs, MAX_JOBS)
    seconds("--keep-for", args.keep_for)
    if only is not None and not only:
        stderr_log(f"shard {args.shard} has no scenario runs: nothing to do")
        return 0
    out = args.out or Path("results") / time.strftime("run-%Y%m%d-%H%M%S")
    kept: list[Any] = []
    try:
        results = run_suite(
            loaded,
            arches,
            out,
            stderr_log,
            kernel_spec(args),
            args.accel,
            kept if args.keep else None,
            args.jobs,
            only,
            meta,
            fresh=args.fresh,
        )
    except Interrupted as exc:
        stderr_log(f"{exc}: {len(exc.results)} results recorded in {out}")
        return 128 + exc.signum
    return _verdict(results, kept, args.keep_for)


def _list(loaded: list[Any], arches: list[str], only: list[tuple[str, str]] | None) -> None:
    """--list: the scenarios that would run (on the chosen arches; with --shard, the shard's)."""
    for item in loaded:
        s = item.scenario
        on = [a for a in s.arches if a in arches and (only is None or (s.name, a) in only)]
        if on:
            description = " ".join(s.description.split())
            print(f"{s.name:40s} {','.join(on):14s} {description}")


def _shard(
    args: argparse.Namespace, loaded: list[Any], arches: list[str]
) -> tuple[list[tuple[str, str]] | None, dict[str, object]]:
    """--shard K/N: the (scenario, arch) pairs of that shard (lab/shard.py, the same split as
    pytest --splits N --group K), and what report.json says about it."""
    if not args.shard:
        if args.durations is not None:
            raise LabError("--durations is for --shard K/N")
        return None, {}
    from lab.shard import DURATIONS_FILE, parse_shard, shard_pairs, shard_root

    shard = parse_shard(args.shard)
    if args.durations is not None and not args.durations.is_file():
        raise LabError(f"--durations {args.durations}: no such file")
    # pytest-split's file sits in pytest's rootdir, which node ids are relative to
    durations = args.durations or shard_root(loaded[0].path.parent) / DURATIONS_FILE
    pairs = shard_pairs([(i.path, i.scenario.name) for i in loaded], arches, shard, durations)
    said = durations if durations.is_file() else f"none ({durations} is missing: equal weights)"
    stderr_log(f"shard {shard}: {len(pairs)} scenario runs (durations: {said})")
    return pairs, {"shard": str(shard), "shard_runs": len(pairs)}


def _verdict(results: list[Any], kept: list[Any], keep_for: float) -> int:
    """Exit status of a run: 1 when anything did not pass or skip, or when nothing ran."""
    bad = [r for r in results if not r.ok]
    for r in bad:
        print(r.render(brief=True), file=sys.stderr)
    if kept:
        from lab.scenario.runner import hold_kept

        hold_kept(kept, keep_for, stderr_log)
    if bad:
        return 1
    if all(r.outcome == "skipped" for r in results):
        stderr_log(f"nothing ran: all {len(results)} runs were skipped (reasons above)")
        return 1
    return 0


def cmd_repro(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.scenario.bundle import bundle_base, read_bundle, same_failure, signature
    from lab.scenario.load import load_file
    from lab.scenario.runner import VMPool, run_scenario

    original, kinfo, yaml = read_bundle(args.bundle)
    loaded = load_file(yaml, bundle_base(args.bundle))
    spec = kernel_spec(args)
    if not spec.chosen:
        spec = KernelSpec.from_dict(kinfo["spec"])
    pool = VMPool(spec, stderr_log, args.accel)
    out = args.bundle / time.strftime("rerun-%Y%m%d-%H%M%S")
    stderr_log(f"rerunning {loaded.scenario.name} on {kinfo['arch']} (was: {kinfo['identity']})")
    try:
        kernel = pool.prepared(kinfo["arch"]).kernel
        new = run_scenario(loaded, kinfo["arch"], pool, out)
    finally:
        pool.close()
    before, after = signature(original), signature(new.as_dict())
    print(f"original on {kinfo['identity']}: {before}")
    print(f"rerun on {kernel.identity}: {after}")
    same, verdict = same_failure(before, after, kernel.key == kinfo["key"])
    print(f"{verdict} (the rerun's logs: {out})")
    return 0 if same else 1


def cmd_schema(args: argparse.Namespace, _command: list[str]) -> int:
    import json

    from lab.scenario.schema import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=1))
    return 0


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run scenarios (default: all) on every arch")
    run.add_argument(
        "names",
        nargs="*",
        metavar="SCENARIO",
        help="scenario names in the folder, or scenario files (default: all in the folder)",
    )
    run.add_argument("--arch", action="append", help="arch to run on (default: all)")
    add_kernel_args(run.add_argument)
    run.add_argument("--accel", default="auto", help="auto|kvm|tcg")
    run.add_argument(
        "--keep", action="store_true", help="keep a VM after a failure and say how to reach it"
    )
    run.add_argument(
        "--keep-for",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long --keep holds the kept VMs at most (default 3600)",
    )
    run.add_argument("--out", type=Path, help="results folder (default results/run-TIMESTAMP)")
    run.add_argument("--scenarios", type=Path, help="scenario folder (default scenarios/)")
    run.add_argument("--list", action="store_true", help="list the scenarios and exit")
    run.add_argument(
        "--fresh",
        action="store_true",
        help="every scenario on a pristine VM restored from a snapshot (saved after one boot)",
    )
    run.add_argument(
        "-j", "--jobs", type=int, default=1, help="VMs per arch running scenarios (default 1)"
    )
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="run shard K of N, split by stored durations as pytest --splits N --group K",
    )
    run.add_argument(
        "--durations",
        type=Path,
        metavar="FILE",
        help="durations for --shard (default: the repository's .test_durations)",
    )
    run.set_defaults(func=cmd_run)
    repro = sub.add_parser(
        "repro", help="rerun a failed scenario's repro bundle; exit 0 when the failure recurs"
    )
    repro.add_argument("bundle", type=Path, help="the bundle folder (results/.../bundle)")
    add_kernel_args(repro.add_argument)
    repro.add_argument("--accel", default="auto", help="auto|kvm|tcg")
    repro.set_defaults(func=cmd_repro)
    schema = sub.add_parser("schema", help="print the scenario format as a JSON schema")
    schema.set_defaults(func=cmd_schema)
