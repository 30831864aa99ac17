"""``remaplab boot`` and ``remaplab shell``: one guest, a command or a shell in it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lab.commands import kernel_spec
from lab.errors import LabError
from lab.kernel.spec import add_kernel_args
from lab.log import stderr_log


def add_vm_args(p: argparse.ArgumentParser) -> None:
    from lab.profiles import profiles

    p.add_argument("--arch", required=True, help=f"guest architecture: {', '.join(profiles())}")
    add_kernel_args(p.add_argument)
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
    kernel, initramfs = prepare(args.arch, kernel_spec(args))
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


def register(sub: Any) -> None:
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
        add_vm_args(vm_cmd)
        vm_cmd.set_defaults(func=func)
