"""``remaplab boot`` and ``remaplab shell``: one guest, a command or a shell in it."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.cli import EXIT_KERNEL_CRASH
from lab.commands import kernel_spec
from lab.errors import GuestTimeout, LabError
from lab.kernel.spec import add_kernel_args
from lab.limits import MAX_SMP, count, memory, seconds
from lab.log import stderr_log
from lab.qemu import randomised

if TYPE_CHECKING:
    from lab.crash import Report
    from lab.kernel import Kernel
    from lab.vm import VM
    from lab.watch import KernelWatch

# The guest's own system folders: a share must not hide them (/root/.ssh: the lab's key).
GUEST_SYSTEM = ("/bin", "/sbin", "/lib", "/usr/bin", "/etc", "/root/.ssh", "/dev", "/run")
HOST_ONLY = ("/proc", "/sys", "/dev")  # host pseudo-filesystems: nothing to share
SHARES_MAX_CHARS = 1024  # the paths go on the kernel command line (2048 bytes at most)
DEATH_WAIT_S = 5.0  # after SSH broke: how long QEMU may take to exit if the guest is dying


def add_vm_args(p: argparse.ArgumentParser) -> None:
    from lab.profiles import profiles

    p.add_argument("--arch", required=True, help=f"guest architecture: {', '.join(profiles())}")
    add_kernel_args(p.add_argument)
    p.add_argument(
        "--append",
        action="append",
        default=[],
        help="extra kernel command line (repeatable: all are kept, in order; guests boot with "
        "nokaslr, and x86_64 TCG guests with noapictimer; `kaslr` here lets the kernel "
        "randomise, which an x86_64 PVH boot never does, `apictimer` gives back the local APIC "
        "timer)",
    )
    p.add_argument("--accel", default="auto", help="auto|kvm|tcg (default auto: KVM if proven)")
    p.add_argument("--memory", default="1G", help="guest memory (default 1G)")
    p.add_argument("--smp", type=int, default=2, help="guest CPUs (default 2)")
    p.add_argument(
        "--qemu-arg", action="append", default=[], metavar="ARG", help="extra QEMU argument"
    )
    p.add_argument("--boot-timeout", type=float, default=120.0, help="seconds to readiness")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for COMMAND")
    p.add_argument(
        "--share",
        action="append",
        default=[],
        metavar="DIR",
        help="share host folder DIR read-write into the guest at the same absolute path "
        "(repeatable); a command started inside it starts in the same folder in the guest",
    )
    p.add_argument(
        "--module",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="your module's source folder (Kbuild or Makefile): built for the kernel and loaded "
        "after the boot (repeatable, loaded in order)",
    )
    p.add_argument(
        "--module-param",
        action="append",
        default=[],
        metavar="MOD.NAME=VALUE",
        help="a parameter for the --module named MOD at insmod (repeatable)",
    )
    p.add_argument(
        "--gdb",
        action="store_true",
        help="start QEMU's gdb stub on a loopback port and print the gdb command line",
    )


def _vm_options(args: argparse.Namespace) -> object:
    from lab.netutil import free_loopback_port
    from lab.vm import VMOptions

    seconds("--timeout", args.timeout)
    if args.gdb and randomised(tuple(args.append)):
        raise LabError("--gdb reads symbols at the vmlinux's addresses: drop kaslr from --append")
    return VMOptions(
        arch=args.arch,
        accel=args.accel,
        memory=memory("--memory", args.memory),
        smp=count("--smp", args.smp, MAX_SMP),
        append=tuple(" ".join(args.append).split()),
        qemu_args=tuple(args.qemu_arg),
        boot_timeout=seconds("--boot-timeout", args.boot_timeout),
        gdb_port=free_loopback_port() if args.gdb else None,
        shares=share_dirs(args.share),
        clean_boot=False,  # a report during boot is shown (below), the guest still yours
    )


def share_dirs(values: list[str]) -> tuple[Path, ...]:
    """--share folders, absolute and resolved, parents first; refused with the reason when the
    guest could not mount them where they are on the host."""
    dirs: set[Path] = set()
    for value in values:
        path = Path(value).expanduser().resolve()
        text = str(path)
        if not path.is_dir():
            raise LabError(f"--share {value}: not a folder")
        if any(c.isspace() or not c.isprintable() for c in text) or '"' in text:
            raise LabError(f"--share {value}: {text!r} has white space or special characters")
        for system in GUEST_SYSTEM:
            if Path(system).is_relative_to(path):
                raise LabError(f"--share {value}: {text} would hide the guest's {system}")
        if any(path.is_relative_to(p) for p in HOST_ONLY):
            raise LabError(f"--share {value}: {text} is a host pseudo-filesystem")
        dirs.add(path)
    if sum(len(str(d)) + 20 for d in dirs) > SHARES_MAX_CHARS:
        raise LabError("--share: the paths are too long for the kernel command line")
    return tuple(sorted(dirs, key=lambda d: (len(d.parts), d)))


def guest_cwd(shares: tuple[Path, ...]) -> str | None:
    """The host's working folder when it lies inside a share (the guest sees it at that path)."""
    cwd = Path(os.getcwd())
    return str(cwd) if any(cwd.is_relative_to(s) for s in shares) else None


def guest_command(words: list[str]) -> str:
    """One word after `--` is a shell command line; more are an argv, quoted for the shell."""
    return words[0] if len(words) == 1 else shlex.join(words)


def cmd_boot(args: argparse.Namespace, command: list[str]) -> int:
    from lab import usermodules
    from lab.accel import ACCELS
    from lab.crash import find_reports
    from lab.kernel.pvh import is_elf
    from lab.profiles import get_profile, require_qemu
    from lab.rootfs import module_name
    from lab.session import prepare
    from lab.vm import VM, VMOptions
    from lab.watch import KernelWatch

    get_profile(args.arch)
    if args.accel not in ACCELS:
        raise LabError(f"--accel {args.accel!r}: choose one of {', '.join(ACCELS)}")
    require_qemu(args.arch)
    if not command and not sys.stdin.isatty():
        raise LabError("no COMMAND given and stdin is not a terminal: nothing to do")
    options = _vm_options(args)
    assert isinstance(options, VMOptions)
    cwd = guest_cwd(options.shares)
    folders, given = tuple(args.module), tuple(args.module_param)
    usermodules.check_args(folders, given)
    kernel, initramfs = prepare(args.arch, kernel_spec(args))
    if randomised(options.append) and args.arch == "x86_64" and is_elf(kernel.image):
        stderr_log(
            "note: kaslr changes nothing here: an x86 kernel booted through PVH never randomises"
        )
    kos = usermodules.build(kernel, folders, stderr_log)
    params = usermodules.insmod_params(given, kos)
    with VM(kernel, initramfs, options) as vm:
        stderr_log(
            f"{args.arch} guest up in {vm.boot_seconds:.2f} s "
            f"(accelerator {vm.accel}: {vm.accel_reason})"
        )
        assert vm.ssh is not None and vm.console is not None
        watch = KernelWatch(vm.console, vm.console.mark())
        for report in find_reports(vm.console.raw()[: watch.mark].decode(errors="replace")):
            vm.failed = True  # keep the console log
            stderr_log(f"kernel report during boot: {report.title} (console log: {vm.console_log})")
        mods = {module_name(ko.name): ko for ko in kos}  # their frames decode too
        for ko in kos:
            _load(vm, ko, params.get(ko.stem, ()))
        if options.gdb_port is not None:
            _print_gdb(vm, kernel, options.gdb_port, kos)
        watch.mark = vm.console.mark()  # the modules' own messages are not the command's
        if not command:
            return _shell(vm, kernel, watch, cwd, mods)
        return _command(vm, kernel, watch, guest_command(command), cwd, args.timeout, mods)


def _load(vm: VM, ko: Path, params: tuple[str, ...]) -> None:
    from lab import usermodules

    try:
        usermodules.insmod(vm, ko, params)
    except LabError:  # would not load, made a report, ignored a parameter, did not return
        vm.failed = True  # keep the console log
        raise
    stderr_log(f"loaded {ko.name}" + (f" {' '.join(params)}" if params else ""))


def _command(
    vm: VM,
    kernel: Kernel,
    watch: KernelWatch,
    line: str,
    cwd: str | None,
    timeout: float,
    mods: dict[str, Path] | None = None,
) -> int:
    """COMMAND's output and status; a kernel crash or the guest's death ends it at once."""
    from lab.ssh import CommandAborted, CommandTimedOut
    from lab.watch import sync_console

    assert vm.ssh is not None

    script = f"cd {shlex.quote(cwd)} || exit 1\n{line}" if cwd else line
    try:
        result = vm.ssh.run(script, timeout=timeout, interrupt=watch.stop_reason)
    except CommandAborted as exc:
        _write(exc.stdout, exc.stderr)
        return _guest_failed(vm, kernel, watch, f"while running {line!r}", exc.reason, mods)
    except CommandTimedOut as exc:
        _write(exc.stdout, exc.stderr)
        vm.failed = True  # keep the console log
        raise GuestTimeout(
            f"guest command {line!r} did not finish within {timeout:g} s "
            f"(console log: {vm.console_log}, kept)"
        ) from None
    _write(result.stdout, result.stderr)
    sync_console(watch.console, vm.ssh.run)  # what the command made the kernel print is in
    if watch.settle():
        # A report still printing when the command ended is as much its doing as one that
        # ended it: the same 121 whichever came first (a race otherwise decides the status).
        return _guest_failed(vm, kernel, watch, f"while running {line!r}", "kernel report", mods)
    return int(result.status)


def _write(stdout: str, stderr: str) -> None:
    sys.stdout.write(stdout)
    sys.stdout.flush()
    sys.stderr.write(stderr)
    sys.stderr.flush()


def _shell(
    vm: VM, kernel: Kernel, watch: KernelWatch, cwd: str | None, mods: dict[str, Path] | None = None
) -> int:
    """An interactive shell; kernel reports are named as they complete, the guest's death ends
    the session with its report."""
    from lab.watch import GUEST_DIED

    def interrupt() -> str | None:
        if watch.console.eof:
            return GUEST_DIED
        for r in watch.new_reports():
            vm.failed = True
            sys.stderr.write(
                f"\r\nremaplab: kernel report on the console: [{r.kind}] {r.title} "
                f"(console log: {vm.console_log}, kept)\r\n"
            )
            sys.stderr.flush()
        return None

    assert vm.ssh is not None
    status = vm.ssh.interactive(cwd, interrupt)
    if status is None or watch.console.eof:
        return _guest_failed(vm, kernel, watch, "under the shell", "the session ended", mods)
    return int(status)


def _guest_failed(
    vm: VM,
    kernel: Kernel,
    watch: KernelWatch,
    during: str,
    reason: str,
    mods: dict[str, Path] | None = None,
) -> int:
    """The guest died or its kernel reported a crash: the reports (decoded), the kept console
    log, EXIT_KERNEL_CRASH.  SSH lost while the guest lives and reports nothing: a LabError."""
    from lab.watch import GUEST_DIED

    vm.failed = True  # keep the console log
    if not reason.startswith("kernel report"):
        watch.console.wait_closed(DEATH_WAIT_S)  # SSH broke: is QEMU exiting?
    reports = watch.settle()
    if not reports and not watch.console.eof:
        raise LabError(
            f"lost the SSH connection to the guest {during} ({reason}); the guest still runs; "
            f"console log: {vm.console_log} (kept)"
        )
    for item in _decoded(reports, kernel, mods):
        sys.stderr.write(item.rstrip("\n") + "\n")
    if reports:
        what = f"kernel crash {during}: [{reports[0].kind}] {reports[0].title}"
    else:
        what = f"{GUEST_DIED} {during}; last console line: {watch.console.last_line()!r}"
    if watch.console.eof and reports:
        what += f" ({GUEST_DIED})"
    stderr_log(what)
    stderr_log(f"console log: {vm.console_log} (kept)")
    return EXIT_KERNEL_CRASH


def _decoded(
    reports: list[Report], kernel: Kernel, mods: dict[str, Path] | None = None
) -> list[str]:
    """Each report's text, its stack decoded to file:line where the objects allow."""
    from lab.symbolize import decode_reports

    try:
        return [str(d["decoded"]) for d in decode_reports(reports, kernel, mods)]
    except (LabError, OSError):
        return [r.text for r in reports]


def _print_gdb(vm: Any, kernel: Any, port: int, kos: list[Path]) -> None:
    """The gdb command line: the kernel's symbols, the stub, and multimap's and the user's
    modules' symbols where the guest loaded them."""
    import shlex

    from lab.build import build_module
    from lab.gdb import add_symbol_file, gdb_argv, kernel_symbols, module_sections
    from lab.rootfs import module_name

    cmds: list[str] = []
    if kernel.kdir is not None:
        res = vm.run("modprobe multimap")
        if res.ok:
            cmds.append(add_symbol_file(build_module(kernel).ko, module_sections(vm)))
        else:
            stderr_log(f"modprobe multimap failed ({res.stderr.strip()}): no module symbols")
    for ko in kos:
        cmds.append(add_symbol_file(ko, module_sections(vm, module_name(ko.name))))
    symbols, missing = kernel_symbols(kernel)
    if missing:
        stderr_log(f"note: {missing}")
    stderr_log(f"gdb stub on 127.0.0.1:{port} (the kernel boots with nokaslr); attach with:")
    stderr_log("  " + shlex.join(gdb_argv(symbols, port, tuple(cmds))))


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
