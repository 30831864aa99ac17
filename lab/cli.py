"""The ``remaplab`` command line.

Exit statuses: a guest command's own status passes through; 124 when a guest command timed out;
125 when remaplab itself failed (bad input, boot failure, host problem); 2 for usage errors."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lab.errors import GuestTimeout, LabError
from lab.log import stderr_log

EXIT_TIMEOUT = 124
EXIT_LAB = 125


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"remaplab: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _add_vm_args(p: argparse.ArgumentParser) -> None:
    from lab.profiles import profiles

    p.add_argument("--arch", required=True, help=f"guest architecture: {', '.join(profiles())}")
    p.add_argument(
        "--kernel", type=Path, help="bring your own kernel image (bzImage/vmlinux/Image)"
    )
    p.add_argument("--kdir", type=Path, help="build tree of --kernel (for modules)")
    _add_lab_kernel_arg(p)
    p.add_argument("--append", default="", help="extra kernel command line")
    p.add_argument("--accel", default="auto", help="auto|kvm|tcg (default auto: KVM if proven)")
    p.add_argument("--memory", default="1G", help="guest memory (default 1G)")
    p.add_argument("--smp", type=int, default=2, help="guest CPUs (default 2)")
    p.add_argument(
        "--qemu-arg", action="append", default=[], metavar="ARG", help="extra QEMU argument"
    )
    p.add_argument("--boot-timeout", type=float, default=120.0, help="seconds to readiness")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for COMMAND")
    p.add_argument(
        "--gdb",
        action="store_true",
        help="start QEMU's gdb stub on a loopback port (nokaslr) and print the gdb command line",
    )


def _add_lab_kernel_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lab-kernel",
        metavar="PROFILE",
        help="use the lab-built kernel (lab or kasan; built once, cached)",
    )


def _vm_options(args: argparse.Namespace) -> object:
    from lab.netutil import free_loopback_port
    from lab.vm import VMOptions

    if args.smp < 1:
        raise LabError(f"--smp must be at least 1, not {args.smp}")
    return VMOptions(
        arch=args.arch,
        accel=args.accel,
        memory=args.memory,
        smp=args.smp,
        append=tuple(args.append.split()) + (("nokaslr",) if args.gdb else ()),
        qemu_args=tuple(args.qemu_arg),
        boot_timeout=args.boot_timeout,
        gdb_port=free_loopback_port() if args.gdb else None,
    )


def cmd_boot(args: argparse.Namespace, command: list[str]) -> int:
    from lab.accel import ACCELS
    from lab.profiles import get_profile
    from lab.session import prepare
    from lab.vm import VM, VMOptions, require_qemu

    get_profile(args.arch)
    if args.accel not in ACCELS:
        raise LabError(f"--accel {args.accel!r}: choose one of {', '.join(ACCELS)}")
    require_qemu(args.arch)
    if not command and not sys.stdin.isatty():
        raise LabError("no COMMAND given and stdin is not a terminal: nothing to do")
    options = _vm_options(args)
    assert isinstance(options, VMOptions)
    kernel, initramfs = prepare(args.arch, args.kernel, args.kdir, lab_kernel=args.lab_kernel)
    with VM(kernel, initramfs, options) as vm:
        stderr_log(
            f"{args.arch} guest up in {vm.boot_seconds:.2f} s "
            f"(accelerator {vm.accel}: {vm.accel_reason}; console {vm.console_log})"
        )
        if options.gdb_port is not None:
            _print_gdb(vm, kernel, options.gdb_port)
        assert vm.ssh is not None
        if not command:
            return vm.ssh.interactive()
        assert vm.console is not None
        mark = vm.console.mark()
        result = vm.run(" ".join(command), timeout=args.timeout)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        sys.stdout.flush()
        _report_crashes(vm.console, mark, vm.console_log)
        return result.status


def _report_crashes(console: Any, mark: int, log: Path) -> None:
    """Kernel reports the command provoked, named on stderr (the guest's exit status stays)."""
    from lab.crash import settled_reports

    for r in settled_reports(console, mark):
        stderr_log(f"kernel report on the console: [{r.kind}] {r.title} (console log {log})")


def _print_gdb(vm: Any, kernel: Any, port: int) -> None:
    """The gdb command line: vmlinux, the stub, and multimap's symbols where it was loaded."""
    import shlex

    from lab.build import build_module
    from lab.gdb import add_symbol_file, gdb_argv, module_sections

    cmds: tuple[str, ...] = ()
    if kernel.kdir is not None:
        res = vm.run("modprobe multimap")
        if res.ok:
            cmds = (add_symbol_file(build_module(kernel).ko, module_sections(vm)),)
        else:
            stderr_log(f"modprobe multimap failed ({res.stderr.strip()}): no module symbols")
    stderr_log(f"gdb stub on 127.0.0.1:{port} (kernel booted with nokaslr); attach with:")
    stderr_log("  " + shlex.join(gdb_argv(kernel.image, port, cmds)))


def cmd_shell(args: argparse.Namespace, _command: list[str]) -> int:
    if not sys.stdin.isatty():
        raise LabError("remaplab shell needs a terminal; for a command use: remaplab boot -- CMD")
    return cmd_boot(args, [])


def cmd_build(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.build import build_module, build_tools
    from lab.kernel import resolve_kernel

    status = 0
    for arch in args.arch or ["x86_64", "arm64"]:
        kernel = resolve_kernel(arch, args.kernel, args.kdir, lab=args.lab_kernel)
        mod = build_module(kernel)
        tools = build_tools(arch)
        print(f"{arch}: {mod.ko} (W=1 clean; log {mod.log})")
        for name, path in tools.items():
            print(f"{arch}: {path} ({name}, static)")
    if args.checkpatch:
        from lab.checkpatch import run_checkpatch

        ok, out = run_checkpatch()
        if not ok:
            print(out, end="")
            status = 1
        else:
            print("checkpatch --strict: clean")
    return status


def cmd_run(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.paths import REPO
    from lab.scenario.load import load_dir, select
    from lab.scenario.runner import Outcome
    from lab.scenario.suite import run_suite

    directory = args.scenarios or REPO / "scenarios"
    loaded = select(load_dir(directory), args.names)  # every file validated before any boot
    if args.list:
        for item in loaded:
            s = item.scenario
            print(f"{s.name:40s} {','.join(s.arches):14s} {s.description}")
        return 0
    arches = args.arch or ["x86_64", "arm64"]
    for arch in arches:
        from lab.profiles import get_profile

        get_profile(arch)
    out = args.out or Path("results") / time.strftime("run-%Y%m%d-%H%M%S")
    kept: list[Any] = []
    results = run_suite(
        loaded,
        arches,
        out,
        {
            "kernel_image": args.kernel,
            "kdir": args.kdir,
            "lab_kernel": args.lab_kernel,
            "accel": args.accel,
            "keep": args.keep,
        },
        stderr_log,
        kept if args.keep else None,
    )
    bad = [r for r in results if r.outcome not in (Outcome.PASSED, Outcome.SKIPPED)]
    for r in bad:
        print(r.render(), file=sys.stderr)
    if kept:
        from lab.scenario.runner import hold_kept

        hold_kept(kept, args.keep_for, stderr_log)
    return 1 if bad else 0


def cmd_kernel_build(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.kernel.labbuild import lab_kernel
    from lab.profiles import get_profile

    if args.jobs is not None and args.jobs < 1:
        raise LabError(f"--jobs must be at least 1, not {args.jobs}")
    for arch in args.arch or ["x86_64"]:
        kernel = lab_kernel(get_profile(arch), args.profile, args.source, args.jobs)
        print(f"{arch}: {kernel.identity}, release {kernel.release}")
        print(f"  --kernel {kernel.image} --kdir {kernel.kdir}")
        if args.source is None:
            print(f"  (or: --lab-kernel {args.profile})")
    return 0


def cmd_repro(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.scenario.bundle import read_bundle, same_failure, signature
    from lab.scenario.load import load_file
    from lab.scenario.runner import VMPool, run_scenario

    original, kinfo, yaml = read_bundle(args.bundle)
    loaded = load_file(yaml)
    spec = kinfo["spec"]
    if args.kernel or args.kdir or args.lab_kernel:
        spec = {"kernel_image": args.kernel, "kdir": args.kdir, "lab_kernel": args.lab_kernel}
    image, kdir = spec.get("kernel_image"), spec.get("kdir")
    pool = VMPool(
        kernel_image=Path(image) if image else None,
        kdir=Path(kdir) if kdir else None,
        lab_kernel=spec.get("lab_kernel"),
        accel=args.accel,
        log=stderr_log,
    )
    out = args.bundle / time.strftime("rerun-%Y%m%d-%H%M%S")
    stderr_log(f"rerunning {loaded.scenario.name} on {kinfo['arch']} (was: {kinfo['identity']})")
    try:
        kernel = pool.prepared(kinfo["arch"])[0]
        new = run_scenario(loaded, kinfo["arch"], pool, out)
    finally:
        pool.close()
    before, after = signature(original), signature(new.as_dict())
    print(f"original on {kinfo['identity']}: {before}")
    print(f"rerun on {kernel.identity}: {after}")
    same, verdict = same_failure(before, after, kernel.key == kinfo["key"])
    print(verdict if same else f"{verdict} (logs: {out})")
    return 0 if same else 1


def cmd_triage(args: argparse.Namespace, _command: list[str]) -> int:
    import json

    from lab.crash import find_reports, strip_header

    path: Path = args.logfile
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LabError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LabError(f"{path}: is a directory, not a console log") from None
    except OSError as exc:
        raise LabError(f"{path}: cannot read: {exc.strerror}") from None
    if b"\0" in raw[:65536]:
        raise LabError(f"{path}: binary data, not a console log")
    _title, text = strip_header(raw.decode(errors="replace"))
    reports = find_reports(text)
    items = [r.as_dict() for r in reports]
    if args.vmlinux or args.module:
        from lab.profiles import get_profile
        from lab.symbolize import Symbolizer

        objects: dict[str | None, Path] = {}
        for obj in [*([args.vmlinux] if args.vmlinux else []), *args.module]:
            if not obj.is_file():
                raise LabError(f"{obj}: no such object file")
        if args.vmlinux:
            objects[None] = args.vmlinux
        for ko in args.module:
            objects[ko.name.split(".", 1)[0].replace("-", "_")] = ko
        symbolizer = Symbolizer(objects, get_profile(args.arch).cross_compile)
        for item in items:
            item["decoded"], item["frames"] = symbolizer.decode(item["text"])
    if args.json:
        print(json.dumps(items, indent=1))
        return 0
    if not reports:
        print("no kernel crash report found")
        return 0
    for item in items:
        print(f"{path}:{item['line']}: [{item['kind']}] {item['title']}")
        if args.verbose:
            print(item.get("decoded", item["text"]) + "\n")
    return 0


def cmd_doctor(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.doctor import doctor

    return doctor()


def cmd_bench(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.bench import bench

    return bench(args.arch or ["x86_64", "arm64"], args.runs, args.out, args.accel)


def build_parser() -> Parser:
    parser = Parser(prog="remaplab", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    for name, func, text, usage in (
        (
            "boot",
            cmd_boot,
            "boot a guest, run COMMAND in it (or a shell), tear it down",
            " [-- COMMAND...]",
        ),
        ("shell", cmd_shell, "boot a lab guest and open a shell in it", ""),
    ):
        vm_cmd = sub.add_parser(
            name, help=text, usage=f"remaplab {name} --arch ARCH [options]{usage}"
        )
        _add_vm_args(vm_cmd)
        vm_cmd.set_defaults(func=func)
    build = sub.add_parser("build", help="build multimap (W=1) and the guest tools per arch")
    build.add_argument("--arch", action="append", help="arch to build for (default: both)")
    build.add_argument("--kernel", type=Path, help="bring your own kernel image")
    build.add_argument("--kdir", type=Path, help="build tree of --kernel")
    _add_lab_kernel_arg(build)
    build.add_argument("--checkpatch", action="store_true", help="also run checkpatch --strict")
    build.set_defaults(func=cmd_build)
    run = sub.add_parser("run", help="run scenarios (default: all) on both arches")
    run.add_argument("names", nargs="*", metavar="SCENARIO", help="scenario names (default: all)")
    run.add_argument("--arch", action="append", help="arch to run on (default: both)")
    run.add_argument("--kernel", type=Path, help="bring your own kernel image")
    run.add_argument("--kdir", type=Path, help="build tree of --kernel")
    _add_lab_kernel_arg(run)
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
    run.set_defaults(func=cmd_run)
    kernel = sub.add_parser("kernel", help="the lab-built kernel")
    ksub = kernel.add_subparsers(dest="kernel_cmd", required=True, parser_class=Parser)
    kbuild = ksub.add_parser(
        "build",
        help="build (once, cached) a kernel with the lab config: CMA, DEBUG_VM, PAGE_OWNER, ...",
    )
    kbuild.add_argument("--arch", action="append", help="arch to build for (default x86_64)")
    kbuild.add_argument(
        "--profile", default="lab", help="lab (default) or kasan (lab config plus KASAN)"
    )
    kbuild.add_argument(
        "--source", type=Path, help="a kernel tree to build (default: Debian's linux-source-6.1)"
    )
    kbuild.add_argument("-j", "--jobs", type=int, help="parallel jobs (default: all CPUs)")
    kbuild.set_defaults(func=cmd_kernel_build)
    repro = sub.add_parser(
        "repro", help="rerun a failed scenario's repro bundle; exit 0 when the failure recurs"
    )
    repro.add_argument("bundle", type=Path, help="the bundle folder (results/.../bundle)")
    repro.add_argument("--kernel", type=Path, help="rerun on this kernel image instead")
    repro.add_argument("--kdir", type=Path, help="build tree of --kernel")
    _add_lab_kernel_arg(repro)
    repro.add_argument("--accel", default="auto", help="auto|kvm|tcg")
    repro.set_defaults(func=cmd_repro)
    triage = sub.add_parser("triage", help="find and title the kernel crash reports in a log")
    triage.add_argument("logfile", type=Path)
    triage.add_argument("--json", action="store_true", help="JSON list: title, kind, text, ...")
    triage.add_argument("-v", "--verbose", action="store_true", help="print each report's text")
    triage.add_argument("--vmlinux", type=Path, help="decode frames with this vmlinux (debug info)")
    triage.add_argument(
        "--module",
        type=Path,
        action="append",
        default=[],
        help="decode frames of this module (.ko with debug info); repeatable",
    )
    triage.add_argument("--arch", default="x86_64", help="arch of the objects (binutils prefix)")
    triage.set_defaults(func=cmd_triage)
    doc = sub.add_parser("doctor", help="check the host: QEMU, cross compiler, KVM, cache")
    doc.set_defaults(func=cmd_doctor)
    bench = sub.add_parser("bench", help="boot-to-first-command benchmark")
    bench.add_argument("--arch", action="append", help="arch to measure (default: both)")
    bench.add_argument("--runs", type=int, default=5)
    bench.add_argument("--accel", default="auto")
    bench.add_argument("--out", type=Path, default=Path("results/bench.json"))
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, command = args_list[:cut], args_list[cut + 1 :]
    args = build_parser().parse_args(args_list)
    func: Callable[[argparse.Namespace, list[str]], int] = args.func
    try:
        return func(args, command)
    except GuestTimeout as exc:
        print(f"remaplab: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except LabError as exc:
        print(f"remaplab: {exc}", file=sys.stderr)
        return EXIT_LAB
    except KeyboardInterrupt:
        print("remaplab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
