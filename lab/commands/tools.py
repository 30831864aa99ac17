"""``remaplab build``, ``kernel build``, ``triage``, ``doctor`` and ``bench``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lab.commands import cc, chosen_arches, kernel_spec
from lab.errors import LabError
from lab.kernel.spec import add_kernel_args
from lab.limits import MAX_BUILD_JOBS, MAX_RUNS, count
from lab.profiles import arches
from lab.readfile import read_limited


def cmd_build(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.build import build_module, build_tools, tools_binary

    status = 0
    spec = kernel_spec(args)
    for arch in chosen_arches(args):
        kernel = spec.resolve(arch)
        mod = build_module(kernel)
        tools = build_tools(arch)
        print(f"{arch}: {mod.ko} (W=1 clean; log {mod.log})")
        binary, names = tools_binary(tools), ", ".join(tools)
        print(f"{arch}: {binary} (static; runs as {names}: a link or copy of that name)")
    if args.checkpatch:
        from lab.checkpatch import run_checkpatch

        ok, out = run_checkpatch()
        if not ok:
            print(out, end="")
            status = 1
        else:
            print("checkpatch --strict: clean")
    return status


def cmd_kernel_build(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.kernel.labbuild import lab_kernel
    from lab.profiles import get_profile

    if args.jobs is not None:
        count("--jobs", args.jobs, MAX_BUILD_JOBS)
    for arch in args.arch or ["x86_64"]:
        kernel = lab_kernel(get_profile(arch), args.profile, args.source, args.jobs)
        print(f"{arch}: {kernel.identity}, release {kernel.release}")
        print(f"  --kernel {kernel.image} --kdir {kernel.kdir}")
        if args.source is None:
            print(f"  (or: --lab-kernel {args.profile})")
    return 0


ELF_ARCHES = {"x64": "x86_64", "AArch64": "arm64"}  # pyelftools' machine names


def elf_arch(obj: Path) -> str:
    """The lab arch an object file was built for (x86_64 when it cannot say)."""
    from elftools.elf.elffile import ELFFile

    try:
        with obj.open("rb") as fh:
            machine = ELFFile(fh).get_machine_arch()
    except Exception:  # not an ELF file: cmd_triage refused it already
        return "x86_64"
    return ELF_ARCHES.get(machine, "x86_64")


def module_name(ko: Path) -> str:
    """A .ko's module name as the kernel prints it in a stack ("[name]"): .modinfo's name=,
    else the file name."""
    from elftools.elf.elffile import ELFFile

    fallback = ko.name.split(".", 1)[0].replace("-", "_")
    try:
        with ko.open("rb") as fh:
            section = ELFFile(fh).get_section_by_name(".modinfo")
            data = section.data() if section is not None else b""
    except Exception:
        return fallback
    for field in data.split(b"\0"):
        if field.startswith(b"name="):
            return field[5:].decode(errors="replace")
    return fallback


# File types that are certainly not console logs (a core dump, a kernel image, an archive).
BINARY_MAGIC = (
    (b"\x7fELF", "an ELF file"),
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"MZ", "a PE/EFI image"),
)


MAX_LOG_BYTES = 1 << 30  # a console log of a long soak is tens of MiB


def cmd_triage(args: argparse.Namespace, _command: list[str]) -> int:
    import json

    from lab.crash import decode_log, find_reports, strip_header

    path: Path = args.logfile
    raw = read_limited(path, MAX_LOG_BYTES, "triage reads a console log", pipes=True)
    kind = next((name for magic, name in BINARY_MAGIC if raw.startswith(magic)), None)
    if kind is not None:  # NUL bytes alone are no reason: real consoles hold them
        raise LabError(f"{path}: binary data ({kind}), not a console log")
    log = decode_log(raw)
    _title, text = strip_header(log)
    # syzkaller's logs (a test file's header says it is one) start after the boot, as --after-boot
    reports = find_reports(text, after_boot=args.after_boot or text != log)
    items = [r.as_dict() for r in reports]
    header = log[: max(0, log.find(text))].count("\n") if text and text != log else 0
    for item in items:  # the file's own line numbers, past a syzkaller test file's header
        item["line"] += header
    if args.vmlinux or args.module:
        from lab.profiles import get_profile
        from lab.symbolize import Symbolizer

        objects: dict[str | None, Path] = {}
        for obj in [*([args.vmlinux] if args.vmlinux else []), *args.module]:
            if not obj.is_file():
                raise LabError(f"{obj}: no such object file")
            with obj.open("rb") as fh:
                if fh.read(4) != b"\x7fELF":
                    raise LabError(f"{obj}: not an ELF object (want a .ko or vmlinux)")
        if args.vmlinux:
            objects[None] = args.vmlinux
        for ko in args.module:
            objects[module_name(ko)] = ko
        arch = args.arch or elf_arch(next(iter(objects.values())))
        symbolizer = Symbolizer(objects, get_profile(arch).cross_compile)
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
            before = f"{item['before']}\n" if item["before"] else ""  # the lines leading to it
            print(before + item.get("decoded", item["text"]) + "\n")
    return 0


def cmd_doctor(args: argparse.Namespace, _command: list[str]) -> int:
    from lab.doctor import doctor

    if args.install_command:
        import subprocess

        from lab.hosttools import install_command

        try:
            arch = subprocess.run(
                ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            raise LabError("dpkg not found: the install command is for Debian/Ubuntu") from None
        print(install_command(arch or "amd64"))
        return 0
    return doctor()


def cmd_bench(args: argparse.Namespace, _command: list[str]) -> int:
    runs = count("--runs", args.runs, MAX_RUNS)
    for option, values in (
        ("--compare-append", args.compare_append),
        ("--compare-qemu-arg", args.compare_qemu_arg),
    ):
        if any(not v.strip() for v in values):
            raise LabError(f"{option} needs a value, not an empty one (B would be A)")
    if args.compare_append or args.compare_qemu_arg:
        from lab.bench_compare import compare

        out = args.out or Path("results/bench-compare.json")
        extras = (tuple(args.compare_append), tuple(args.compare_qemu_arg))
        return compare(chosen_arches(args), runs, out, args.accel, *extras)
    from lab.bench import bench

    return bench(chosen_arches(args), runs, args.out or Path("results/bench.json"), args.accel)


def _register_kernel(sub: Any, parser_class: Any) -> None:
    kernel = sub.add_parser("kernel", help="the lab-built kernel")
    ksub = kernel.add_subparsers(dest="kernel_cmd", required=True, parser_class=parser_class)
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


def _register_triage(sub: Any) -> None:
    triage = sub.add_parser("triage", help="find and title the kernel crash reports in a log")
    triage.add_argument("logfile", type=Path)
    triage.add_argument(
        "--after-boot",
        action="store_true",
        help="the log starts after the kernel booted (syzkaller's logs, dmesg -w): a "
        "'Booting the kernel' anywhere in it is a reboot, not the first boot",
    )
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
    triage.add_argument(
        "--arch",
        choices=arches(),
        help="arch of the objects to decode with (default: read from the ELF file)",
    )
    triage.set_defaults(func=cmd_triage)


def register(sub: Any, parser_class: Any) -> None:
    build = sub.add_parser("build", help="build multimap (W=1) and the guest tools per arch")
    build.add_argument("--arch", action="append", help="arch to build for (default: all)")
    add_kernel_args(build.add_argument)
    build.add_argument("--checkpatch", action="store_true", help="also run checkpatch --strict")
    build.set_defaults(func=cmd_build)
    _register_kernel(sub, parser_class)
    _register_triage(sub)
    doc = sub.add_parser("doctor", help="check the host: QEMU, cross compiler, KVM, cache")
    doc.add_argument(
        "--install-command",
        action="store_true",
        help="print the root shell command that installs the host packages the lab needs "
        '(for CI: sudo sh -c "$(remaplab doctor --install-command)")',
    )
    doc.set_defaults(func=cmd_doctor)
    bench = sub.add_parser("bench", help="boot-to-first-command benchmark")
    bench.add_argument("--arch", action="append", help="arch to measure (default: all)")
    bench.add_argument(
        "--runs", type=int, default=5, help="boots per figure (pairs with --compare-*)"
    )
    bench.add_argument("--accel", default="auto")
    bench.add_argument(
        "--out", type=Path, help="JSON (default results/bench.json, or bench-compare.json)"
    )
    bench.add_argument(
        "--compare-append",
        action="append",
        default=[],
        metavar="TEXT",
        help="only compare boots: interleaved pairs of the lab's boot and one with TEXT added "
        "to the kernel command line (repeatable)",
    )
    bench.add_argument(
        "--compare-qemu-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="likewise, with ARG added to QEMU's command line (repeatable; --compare-qemu-arg=-X)",
    )
    bench.set_defaults(func=cmd_bench)
    cc.register(sub)
