"""One reproduction: compile, prepare the kernel and initramfs, run N times over M VMs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lab.cc import check_source, compile_static
from lab.errors import LabError
from lab.kernel import Kernel, KernelSpec
from lab.limits import MAX_JOBS, MAX_RUNS, MAX_SMP, count, memory, seconds
from lab.log import Log, stderr_log
from lab.profiles import require_qemu
from lab.reproduce.outcome import BOOT_FAILURE, ERROR, RunRecord, Summary, summarize
from lab.reproduce.runner import Job, run_all
from lab.usermodules import build, check_args, insmod_params
from lab.vm import VMOptions

DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Request:
    arch: str
    source: Path  # the reproducer's C source
    runs: int = 1
    vms: int = 1
    timeout: float = DEFAULT_TIMEOUT_S
    title: str | None = None  # a regex: only matching crash titles count
    accel: str = "auto"
    memory: str = "1G"
    smp: int = 2
    modules: tuple[Path, ...] = ()  # module source folders, built and loaded before every run
    module_params: tuple[str, ...] = ()  # "MOD.NAME=VALUE", as on the kernel command line
    args: tuple[str, ...] = ()  # the reproducer's own argv[1:]
    cflags: tuple[str, ...] = ()  # compiler flags for it (-D, -O, ...)

    def check(self) -> re.Pattern[str] | None:
        """Refuse bad values with one line (LabError); the compiled --title."""
        count("--runs", self.runs, MAX_RUNS)
        count("--vms", self.vms, MAX_JOBS)
        seconds("--timeout", self.timeout)
        memory("--memory", self.memory)
        count("--smp", self.smp, MAX_SMP)
        check_args(self.modules, self.module_params)
        try:
            check_source(self.source)
        except LabError as exc:
            raise LabError(f"--repro {exc}") from None
        try:
            return re.compile(self.title) if self.title is not None else None
        except re.error as exc:
            raise LabError(f"--title {self.title!r}: not a regular expression ({exc})") from None


@dataclass
class Reproduction:
    kernel: Kernel
    binary: Path
    records: list[RunRecord]
    summary: Summary
    modules: tuple[Path, ...] = ()  # the user's built .ko files (their frames decode)


def reproduce(request: Request, spec: KernelSpec, log: Log = stderr_log) -> Reproduction:
    """Compile, build/resolve the kernel, run; a LabError when no run could even start."""
    from lab.profiles import get_profile
    from lab.session import prepare

    pattern = request.check()
    get_profile(request.arch)
    require_qemu(request.arch)
    binary = compile_static(request.arch, request.source, request.cflags, log=log)
    kernel, initramfs = prepare(request.arch, spec, log=log)
    kos = build(kernel, request.modules, log)
    params = insmod_params(request.module_params, kos)
    return run_on(request, kernel, initramfs, binary, pattern, log, tuple(kos), params)


def run_on(
    request: Request,
    kernel: Kernel,
    initramfs: object,
    binary: Path,
    pattern: re.Pattern[str] | None,
    log: Log = stderr_log,
    modules: tuple[Path, ...] = (),
    params: dict[str, tuple[str, ...]] | None = None,
) -> Reproduction:
    from lab.rootfs import Initramfs

    assert isinstance(initramfs, Initramfs)
    options = VMOptions(
        arch=request.arch, accel=request.accel, memory=request.memory, smp=request.smp
    )
    job = Job(
        kernel,
        initramfs,
        options,
        binary,
        request.timeout,
        request.runs,
        modules,
        params or {},
        request.args,
    )
    log(
        f"running {request.source.name} {request.runs} time(s) on {min(request.vms, request.runs)}"
        f" VM(s), {kernel.identity} ({request.arch})"
    )
    records = run_all(job, request.vms, log)
    if records and all(r.outcome in (BOOT_FAILURE, ERROR) for r in records):
        raise LabError(f"no run of {request.source.name} could run: {records[-1].detail}")
    return Reproduction(kernel, binary, records, summarize(records, pattern), modules)
