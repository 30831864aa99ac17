"""One QEMU guest: start, wait for readiness, talk over SSH and QMP, tear down on every path."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pexpect

from lab import accel as accel_mod
from lab import bootcheck, bootfail, image_in_ram, reaper, stall, workdirs
from lab.console import Console, ConsoleEOF
from lab.errors import BootError, GuestTimeout, LabError
from lab.kernel import Kernel
from lab.log import Log, stderr_log
from lab.netutil import free_loopback_port
from lab.physmem import GuestRAM, RamFile, parse_size
from lab.profiles import firmware_path, get_profile, require_qemu
from lab.qemu import QemuSpec, build_argv, firmware_args, portable, render
from lab.qmp_greeting import open_qmp
from lab.rootfs import Initramfs
from lab.ssh import CommandResult, GuestSSH, Interrupt
from lab.steplog import step

READY = re.compile(r"remaplab: ready (\S+)")
HOSTFWD_FAILED = re.compile(r"Could not set up host forwarding rule")
PORT_ATTEMPTS = 3
QUIT_TIMEOUT_S = 5.0
QMP_GREETING_S = 10.0
# A guest whose console stays silent this long after QEMU started is stalled (a QEMU/TCG
# start-up stall seen under parallel load), not slow: time to the first console byte measured
# 4.0-11.2 s (TCG, both arches booting at once on 2 busy cores); the boot is retried once.
FIRST_OUTPUT_S = 30.0
SILENT_RETRIES = 1


@dataclass
class VMOptions:
    arch: str
    accel: str = "auto"
    memory: str = "1G"
    smp: int = 2
    append: tuple[str, ...] = ()
    qemu_args: tuple[str, ...] = ()
    boot_timeout: float = 120.0
    first_output_timeout: float = FIRST_OUTPUT_S  # silent console this long: retry the boot once
    ssh_timeout: float = 30.0
    gdb_port: int | None = None
    workdir: Path | None = None
    shared_ram: bool = True  # guest RAM in a host-readable file (guest-physical witness)
    keep_workdir: bool = False  # kept anyway when the boot failed (console log = evidence)
    shares: tuple[Path, ...] = ()  # host folders mounted read-write at the same guest path
    clean_boot: bool = True  # a kernel report during boot: retried once, then noted


class SilentConsole(Exception):
    """The guest's console printed nothing within FIRST_OUTPUT_S of QEMU's start."""


class VM:
    def __init__(
        self, kernel: Kernel, initramfs: Initramfs, options: VMOptions, log: Log = stderr_log
    ) -> None:
        self.kernel = kernel
        self.initramfs = initramfs
        self.options = options
        self.profile = get_profile(options.arch)
        self.log = log
        self.child: Any = None
        self.console: Console | None = None
        self.ssh: GuestSSH | None = None
        self.qmp: Any = None
        self.accel = "tcg"
        self.accel_reason = ""
        self.argv: list[str] = []
        self.boot_argv: list[str] = []  # what boots this guest (a restore's argv does not)
        self.boot_notes: list[str] = []  # e.g. "boot retried: no console output in 30 s"
        self.boot_seconds = 0.0
        self.ready_seconds = 0.0  # QEMU spawned -> the console's readiness line (last boot)
        self.ended = "status unknown"  # how the last QEMU ended (reaper.how_it_ended)
        self._owner: int | None = None  # the lock that keeps a running VM's folder from pruning
        if options.workdir is None:
            self.workdir, self._owner = workdirs.new_workdir(options.arch)
        else:
            self.workdir = options.workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.failed = False
        self.stalls: list[Path] = []  # each silent boot's or boot report's evidence (kept)
        self.boot_reported = False  # the kernel reported while this guest booted (bootcheck)
        self.watch: Interrupt | None = None  # asked while a command runs: when to stop waiting
        self.ram = RamFile(self.workdir)

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> VM:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @property
    def qemu_stderr(self) -> Path:
        return self.workdir / "qemu-stderr.log"

    @property
    def evidence_files(self) -> tuple[Path, Path]:
        return self.console_log, self.qemu_stderr

    @property
    def evidence(self) -> str:
        """Both files as every boot failure names them."""
        return bootfail.evidence(*self.evidence_files)

    def start(self) -> None:
        require_qemu(self.options.arch)
        bootcheck.warm()  # the readiness check's crash table, compiled while QEMU boots
        choice = accel_mod.choose(self.options.accel, self.profile, self.kernel.key)
        if choice.probe_key is None:
            self.accel, self.accel_reason = choice.accel, choice.reason
            self._boot(choice.accel, self.options.boot_timeout)
            return
        # auto with no verdict yet: the first boot is the KVM probe, bounded; TCG if it fails.
        try:
            self._boot("kvm", min(self.options.boot_timeout, accel_mod.KVM_PROBE_TIMEOUT_S))
        except (BootError, GuestTimeout) as exc:
            self._kill()
            why = accel_mod.record_verdict(
                choice.probe_key, False, str(exc), self.console_log, self.qemu_stderr
            )
            for kept in self.evidence_files:  # kept by the verdict; TCG's are its own
                kept.unlink(missing_ok=True)
            self.failed = False  # the probe's evidence is kept: this VM is judged by its own boot
            self.accel, self.accel_reason = "tcg", f"KVM probe failed: {why}"
            self.log(f"{self.options.arch}: KVM probe failed ({why}); using TCG")
            self._boot("tcg", self.options.boot_timeout)
            return
        accel_mod.record_verdict(choice.probe_key, True, "booted")
        self.accel, self.accel_reason = "kvm", "KVM probe booted the guest"

    def spec(self, accel: str, port: int) -> QemuSpec:
        return QemuSpec(
            profile=self.profile,
            image=self.kernel.image,
            initrd=self.initramfs.path,
            accel=accel,
            memory=self.options.memory,
            smp=self.options.smp,
            append=self.options.append,
            qemu_args=self.options.qemu_args,
            qmp_socket=self.workdir / "qmp.sock",
            ssh_port=port,
            modules_share=(
                self.kernel.modules_dir / "kernel"
                if self.initramfs.has_module_share and self.kernel.modules_dir
                else None
            ),
            name=f"remaplab-{self.options.arch}-{os.getpid()}-{self.workdir.name}",
            gdb_port=self.options.gdb_port,
            ram_file=self.ram.path if self.options.shared_ram else None,
            shares=self.options.shares,
            bios=firmware_path(self.profile),
            preload=self.preload,
        )

    @functools.cached_property
    def preload(self) -> image_in_ram.Preload | None:
        """The kernel put into guest RAM for QEMU (lab/image_in_ram.py); None: QEMU loads it."""
        if not (self.options.shared_ram and self.profile.image_in_ram) or firmware_args(
            self.options.qemu_args
        ):
            return None  # firmware (-bios, flash) is handed the -kernel file through fw_cfg
        header, memory = self.workdir / "kernel-header.img", parse_size(self.options.memory)
        return image_in_ram.plan(self.kernel.image, header, memory)

    def _boot(self, accel: str, timeout: float) -> None:
        with step("boot", arch=self.options.arch, accel=accel) as record:
            self._boot_once(accel, timeout)
            record["boot_seconds"] = round(self.boot_seconds, 3)
            record["ready_seconds"] = round(self.ready_seconds, 3)

    def _boot_once(self, accel: str, timeout: float) -> None:
        start = time.monotonic()
        attempts_silent, reported = 0, False
        for attempt in range(PORT_ATTEMPTS + SILENT_RETRIES + 1):
            port = free_loopback_port()
            spec = self.spec(accel, port)
            self.spawn(build_argv(spec), build_argv(portable(spec)), spec.preload)
            assert self.console is not None
            try:
                self._wait_ready(timeout - (time.monotonic() - start))
                self.ready_seconds = time.monotonic() - start
                if self.options.clean_boot and bootcheck.retry(self, attempt, reported):
                    reported = True
                    self._kill()
                    start = time.monotonic()  # the retry is a boot of its own: its own time
                    continue
                self.ram.unlink()
                break
            except SilentConsole as exc:
                seen = self._capture_stall()
                self._kill()
                if attempts_silent < SILENT_RETRIES:
                    attempts_silent += 1
                    self.boot_notes.append(f"boot retried: {exc} ({seen})")
                    self.log(f"{self.options.arch}: {exc} ({seen}); retrying the boot once")
                    continue
                self.failed = True
                raise BootError(
                    f"{self.options.arch} guest did not boot: {exc}, twice ({seen}; "
                    f"{self.evidence})",
                    self.workdir,
                ) from None
            except ConsoleEOF as exc:
                text = self.console.text() + bootfail.read_stderr(self.qemu_stderr)
                self._kill()
                if HOSTFWD_FAILED.search(text) and attempt + 1 < PORT_ATTEMPTS:
                    continue  # lost the race for the port: take another
                self.failed = True
                why = bootfail.explain_exit(
                    self.options.arch, text, exc.last_line, self.ended, *self.evidence_files
                )
                raise BootError(why, self.workdir) from None
            except GuestTimeout as exc:
                self._kill()
                self.failed = True
                raise BootError(
                    f"{self.options.arch} guest did not boot: {exc} ({self.evidence})",
                    self.workdir,
                ) from None
        self.connect_ssh(port)
        self.boot_seconds = time.monotonic() - start

    def _capture_stall(self) -> str:
        """QEMU's view of the silent guest (run state, each vCPU's place), kept in the VM's
        folder, which is then kept whatever happens next; returns the summary and the path."""
        self.stalls.append(self.workdir / f"stall-{len(self.stalls) + 1}.txt")
        pid = self.child.pid if self.child is not None else None
        return stall.record(self.workdir / "qmp.sock", self.stalls[-1], pid)

    def spawn(
        self,
        argv: list[str],
        boot_argv: list[str] | None = None,
        preload: image_in_ram.Preload | None = None,
    ) -> None:
        """Start QEMU with argv under pexpect: console streamed to its log, reaped with us.
        boot_argv: what boots this guest with QEMU alone when argv does not (a restore's, a
        preloaded kernel's); preload: the kernel to put into the new RAM file first."""
        self.argv, self.boot_argv = argv, boot_argv or argv
        self.ended = "status unknown"  # until this QEMU is reaped (_kill)
        note = "" if preload is None else image_in_ram.note(preload, render(self.boot_argv))
        (self.workdir / "qemu-argv.txt").write_text(render(argv) + "\n" + note)
        with contextlib.suppress(FileNotFoundError):
            (self.workdir / "qmp.sock").unlink()
        if self.options.shared_ram:
            if preload is not None and self.ram.fd is not None:
                raise AssertionError("a preloaded kernel needs a new RAM file")
            ram = self.ram.create()  # unlinked once QEMU runs (_boot_once, _kill)
            if preload is not None:
                image_in_ram.place(preload, ram, self.ram.path)
        self.child = pexpect.spawn(
            argv[0],
            argv[1:],
            timeout=None,
            preexec_fn=reaper.make_preexec(os.getpid(), str(self.qemu_stderr)),
            dimensions=(50, 250),
        )
        # _kill reaps QEMU before closing the pty: ptyprocess's 0.1 s wait after it is not needed
        self.child.ptyproc.delayafterclose = 0.0
        reaper.register(self.child)
        self.console = Console(self.child, self.console_log)

    def connect_ssh(self, port: int, first: str | Callable[[], str] = "true") -> CommandResult:
        """SSH to the guest's forwarded port and run first there (BootError when it does not
        answer in time); returns first's result."""
        self.ssh = GuestSSH(port, self.initramfs.keys)
        try:
            with step("ssh-connect", port=port):
                return self.ssh.connect(self.options.ssh_timeout, first)
        except GuestTimeout as exc:
            self.failed = True
            raise BootError(
                f"{self.options.arch} guest booted but SSH failed: {exc} ({self.evidence})",
                self.workdir,
            ) from None

    def _wait_ready(self, timeout: float) -> None:
        """The readiness line within timeout; SilentConsole if the console says nothing at all
        within FIRST_OUTPUT_S."""
        assert self.console is not None
        what = f"the {self.options.arch} guest to report readiness"
        deadline = time.monotonic() + timeout
        first = min(self.options.first_output_timeout, timeout)
        try:
            self.console.wait_for(re.compile(r"\S"), first, "the first console output")
        except GuestTimeout:
            if first < timeout:
                raise SilentConsole(f"no console output in {first:.0f} s") from None
            raise
        self.console.wait_for(READY, max(0.0, deadline - time.monotonic()), what)

    def connect_qmp(self) -> Any:
        if self.qmp is None:
            self.qmp = open_qmp(self.workdir / "qmp.sock", QMP_GREETING_S)
        return self.qmp

    def run(self, command: str, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        if self.ssh is None:
            raise LabError("the VM is not running")
        return self.ssh.run(command, timeout=timeout, stdin=stdin, interrupt=self.watch)

    def put(self, local: Path, remote: str, mode: int = 0o644, timeout: float = 120.0) -> None:
        if self.ssh is None:
            raise LabError("the VM is not running")
        self.ssh.put(local, remote, mode, timeout)

    def guest_ram(self) -> GuestRAM:
        """Guest-physical memory, mapped read-only on the host."""
        if not self.options.shared_ram or not self.alive:
            raise LabError("guest RAM is not shared with the host for this VM")
        return self.ram.mapped(self.profile, parse_size(self.options.memory))

    @property
    def alive(self) -> bool:
        return self.child is not None and reaper.child_alive(self.child)

    def stop(self) -> None:
        """Clean shutdown: SIGTERM (QEMU's own orderly exit; a QMP `quit` would first need a
        greeting, which a busy main loop may never send, and qemu.qmp's connect has no bound),
        bounded wait, then SIGKILL.  Safe to call more than once."""
        if self.ssh is not None:
            self.ssh.close()
            self.ssh = None
        if self.child is not None and reaper.child_alive(self.child):
            with contextlib.suppress(OSError):
                os.kill(self.child.pid, signal.SIGTERM)
            if self.console is not None:
                self.console.wait_closed(QUIT_TIMEOUT_S)
        self._kill()
        keep = self.options.keep_workdir or self.failed or bool(self.stalls)
        if self._owner is not None:
            workdirs.release(self.workdir, self._owner, keep)
            self._owner = None
            if not keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """Kill QEMU at once (no clean shutdown) and keep the folder: the VM can start again."""
        if self.ssh is not None:
            self.ssh.close()
            self.ssh = None
        self._kill()
        self.console = None

    def _kill(self) -> None:
        if self.qmp is not None:
            with contextlib.suppress(Exception):
                self.qmp.close()
            self.qmp = None
        if self.child is not None:
            if reaper.child_alive(self.child):
                with contextlib.suppress(OSError):
                    os.kill(self.child.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.child.wait()
                self.ended = reaper.how_it_ended(self.child)
            with contextlib.suppress(Exception):
                self.child.close(force=True)
            reaper.unregister(self.child)
            if self.console is not None:
                self.console.join(2.0)
            self.child = None
        self.ram.close()
