"""``remaplab reproduce`` (a C reproducer, N runs on clean guests) and ``remaplab bisect``."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any

from lab.commands import kernel_spec
from lab.errors import LabError
from lab.kernel.spec import add_kernel_args
from lab.limits import MAX_RUNS, count, seconds
from lab.log import stderr_log


def _bundle_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return Path(args.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = "repro" if args.repro.stem == "repro" else f"repro-{args.repro.stem}"  # a bundle's rerun
    return Path("results") / f"{name}-{args.arch}-{stamp}"


def _cflags(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise LabError(f"--cflags {text!r}: {exc}") from None


def _rerun_options(args: argparse.Namespace) -> list[str]:
    words = ["--arch", args.arch, "--runs", str(args.runs), "--vms", str(args.vms)]
    words += ["--timeout", f"{args.timeout:g}", "--accel", args.accel]
    words += ["--memory", args.memory, "--smp", str(args.smp)]
    if args.title is not None:
        words += ["--title", args.title]
    if args.cflags:
        words += ["--cflags", args.cflags]
    for param in args.module_param:
        words += ["--module-param", param]
    return words


def cmd_reproduce(args: argparse.Namespace, command: list[str]) -> int:
    from lab.reproduce.bundle import write_bundle
    from lab.reproduce.session import Request, reproduce

    request = Request(
        arch=args.arch,
        source=args.repro,
        runs=args.runs,
        vms=args.vms,
        timeout=args.timeout,
        title=args.title,
        accel=args.accel,
        memory=args.memory,
        smp=args.smp,
        modules=tuple(args.module),
        module_params=tuple(args.module_param),
        args=tuple(command),
        cflags=tuple(_cflags(args.cflags)),
    )
    request.check()
    spec = kernel_spec(args)
    start = time.monotonic()
    result = reproduce(request, spec)
    bundle = write_bundle(
        _bundle_dir(args),
        args.repro,
        result.binary,
        spec,
        result.kernel,
        _rerun_options(args),
        result.records,
        result.summary,
        request.modules,
        result.modules,
        request.args,
    )
    s = result.summary
    if args.json:
        data: dict[str, Any] = {
            "runs": s.runs,
            "crashed": s.crashed,
            "reproduced": s.reproduced,
            "title": s.title,
            "titles": s.titles,
            "matched": s.matched,
            "outcomes": s.outcomes,
            "kernel": result.kernel.identity,
            "arch": args.arch,
            "seconds": round(time.monotonic() - start, 1),
            "bundle": str(bundle),
            "details": [r.as_dict() for r in result.records],
        }
        print(json.dumps(data, indent=1))
    else:
        print("\n".join(s.lines()))
        print(f"bundle: {bundle} (rerun: {bundle / 'repro.sh'})")
    stderr_log(f"reproduce took {time.monotonic() - start:.1f} s")
    return 0 if s.reproduced else 1


def cmd_bisect(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.bisect import git
    from lab.bisect.driver import bisect
    from lab.bisect.probe import Test
    from lab.cc import compile_static
    from lab.errors import LabError
    from lab.profiles import get_profile

    get_profile(args.arch)
    count("--runs", args.runs, MAX_RUNS)
    seconds("--timeout", args.timeout)
    if not args.test.is_file():
        raise LabError(f"{args.test}: no such test (a scenario .yaml or a C reproducer .c)")
    repo = git.toplevel(args.repo)
    for rev in (args.good, args.bad):  # a bad revision is refused before any log folder
        git.resolve(repo, rev)
    out = args.out or Path("results") / time.strftime("bisect-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    test = Test(
        path=args.test.resolve(),
        arch=args.arch,
        runs=args.runs,
        repo=repo,
        out=out.resolve(),
        spec=kernel_spec(args),
        timeout=args.timeout,
        config=args.config,
    )
    if test.is_c:
        test.binary = compile_static(args.arch, test.path)
    show = stderr_log if args.json else _say
    result = bisect(test, args.good, args.bad, show)
    if args.json:
        print(json.dumps(result.as_dict(str(out)), indent=1))
    elif result.culprit:
        print(f"culprit: {result.culprit} {result.subject}")
        print(f"signature: {result.signature}; log: {out}")
    else:
        print(f"no single culprit: only skipped commits left: {', '.join(result.candidates)}")
    return 0 if result.culprit else 1


def _say(line: str) -> None:
    print(line, flush=True)


def _register_bisect(sub: Any) -> None:
    p = sub.add_parser(
        "bisect",
        help="find the commit of --repo that introduced TEST's failure (git bisect, worktree)",
        usage="remaplab bisect TEST --repo DIR --good REV --bad REV [--arch ARCH] [--runs N] "
        "[--json]",
    )
    p.add_argument("test", type=Path, metavar="TEST", help="a scenario .yaml or a C reproducer")
    p.add_argument("--repo", type=Path, required=True, help="git tree: a kernel or a module")
    p.add_argument("--good", required=True, metavar="REV", help="a commit without the failure")
    p.add_argument("--bad", required=True, metavar="REV", help="a commit with the failure")
    p.add_argument("--arch", default="x86_64", help="guest architecture (default x86_64)")
    p.add_argument("--runs", type=int, default=1, help="runs per commit; bad if any fails")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per C run")
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="kernel tree: build with this .config"
    )
    add_kernel_args(p.add_argument)
    p.add_argument("--out", type=Path, help="log folder (default results/bisect-TIMESTAMP)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_bisect)


def register(sub: Any) -> None:
    _register_bisect(sub)
    from lab.profiles import profiles

    p = sub.add_parser(
        "reproduce",
        help="run a C reproducer N times on clean guests; exit 0 when a kernel crash came",
        usage="remaplab reproduce --repro FILE.c [--arch ARCH] [kernel options] [--runs N] "
        "[--vms M] [--module DIR]... [--module-param MOD.NAME=VALUE]... [--title REGEX] "
        "[--timeout S] [--cflags FLAGS] [--json] [-- ARGS...]",
    )
    p.add_argument("--repro", type=Path, required=True, metavar="FILE.c", help="the reproducer")
    p.add_argument("--arch", default="x86_64", help=f"guest architecture: {', '.join(profiles())}")
    add_kernel_args(p.add_argument, build=True)
    p.add_argument("--runs", type=int, default=1, help="how many runs (default 1)")
    p.add_argument("--vms", type=int, default=1, help="VMs running them at once (default 1)")
    p.add_argument("--title", metavar="REGEX", help="count only crashes whose title matches")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run (default 300)")
    p.add_argument("--accel", default="auto", help="auto|kvm|tcg")
    p.add_argument("--memory", default="1G", help="guest memory (default 1G)")
    p.add_argument("--smp", type=int, default=2, help="guest CPUs (default 2)")
    p.add_argument(
        "--module",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="your module's source folder (Kbuild or Makefile): built for the kernel and loaded "
        "into every fresh guest before the run (repeatable, loaded in order)",
    )
    p.add_argument(
        "--module-param",
        action="append",
        default=[],
        metavar="MOD.NAME=VALUE",
        help="a parameter for the --module named MOD at insmod, as on the kernel command line "
        "(repeatable; e.g. vmrmap.bug=1)",
    )
    p.add_argument(
        "--cflags",
        default="",
        metavar="FLAGS",
        help="compiler flags for the reproducer, one shell-quoted string (e.g. '-DLOOPS=100 -O2')"
        "; its arguments go after --",
    )
    p.add_argument("--out", type=Path, help="bundle folder (default results/repro-NAME-ARCH-...)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_reproduce)
