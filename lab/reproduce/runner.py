"""Runs of a reproducer: M worker threads, each with its own VM, taking run numbers from one
queue.  Each run starts on a clean guest: a fresh VM, unless the previous run on that VM ended
cleanly (the program finished, no report on the console, the guest answers, its taint flags
unchanged), in which case the guest is reused and the record says so."""

from __future__ import annotations

import queue
import shlex
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import paramiko

from lab.errors import BootError, LabError
from lab.kernel import Kernel
from lab.log import Log
from lab.reproduce.outcome import (
    BOOT_FAILURE,
    CRASH,
    ERROR,
    INTERRUPTED,
    LOST_TITLE,
    NO_CRASH,
    TIMED_OUT,
    RunRecord,
)
from lab.rootfs import Initramfs
from lab.scenario.oracles import taint_letters
from lab.ssh import CommandAborted, CommandTimedOut
from lab.usermodules import ModuleLoadFailure, insmod
from lab.vm import VM, VMOptions
from lab.watch import KernelWatch, sync_console

GUEST_BINARY = "/root/repro"
HEALTH_TIMEOUT_S = 15.0  # the guest must answer a `cat` this fast to be reused
DEATH_WAIT_S = 5.0  # after SSH broke: how long QEMU may take to exit if the guest is dying
OUTPUT_KEEP = 1 << 16  # characters of each of its stdout and stderr a run keeps (the end)
GUEST_ERRORS = (LabError, OSError, EOFError, paramiko.SSHException)


@dataclass(frozen=True)
class Job:
    kernel: Kernel
    initramfs: Initramfs
    options: VMOptions
    binary: Path
    timeout: float  # per run
    runs: int
    modules: tuple[Path, ...] = ()  # .ko files loaded, in order, into every fresh guest
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per .ko stem: NAME=VALUE
    args: tuple[str, ...] = ()  # the reproducer's argv[1:]


class _Slot:
    """One worker's VM, its boot-time taint, and whether it may be reused."""

    def __init__(self, job: Job, number: int, log: Log) -> None:
        self.job, self.number, self.log = job, number, log
        self.vm: VM | None = None
        self.taint = ""

    def boot(self) -> VM:
        vm = VM(self.job.kernel, self.job.initramfs, replace(self.job.options), self.log)
        try:
            vm.start()
            vm.put(self.job.binary, GUEST_BINARY, 0o755)
            for ko in self.job.modules:
                insmod(vm, ko, self.job.params.get(ko.stem, ()))
            self.taint = vm.run("cat /proc/sys/kernel/tainted", HEALTH_TIMEOUT_S).stdout.strip()
        except BaseException:
            vm.failed = True
            vm.stop()
            raise
        self.vm = vm
        return vm

    def unhealthy(self) -> str | None:
        """Why the guest may not run the next run (None: it may): its taint changed (a WARNING,
        a module loaded out of tree), or it does not answer."""
        assert self.vm is not None
        try:
            res = self.vm.run("cat /proc/sys/kernel/tainted", HEALTH_TIMEOUT_S)
        except GUEST_ERRORS as exc:
            return f"the guest did not answer ({exc})"
        now = res.stdout.strip()
        if not res.ok or now == self.taint:
            return None if res.ok else "the guest could not read its taint"
        return f"the kernel's taint changed from {self.taint} to {now}{taint_letters(now)}"

    def discard(self, keep_log: bool) -> None:
        if self.vm is not None:
            self.vm.failed = self.vm.failed or keep_log
            self.vm.stop()
            self.vm = None


def _execute(
    vm: VM, timeout: float, stop: threading.Event, args: tuple[str, ...] = ()
) -> tuple[KernelWatch, RunRecord]:
    """Run the binary once; the record's outcome is provisional (reports decide)."""
    assert vm.ssh is not None and vm.console is not None
    watch = KernelWatch(vm.console, vm.console.mark())
    record = RunRecord(0, 0, "", NO_CRASH)

    def interrupt() -> str | None:
        return INTERRUPTED if stop.is_set() else watch.stop_reason()

    try:
        line = shlex.join([GUEST_BINARY, *args])
        res = vm.ssh.run(f"cd /root && {line}", timeout=timeout, interrupt=interrupt)
        record.status = res.status
        _keep_output(record, res.stdout, res.stderr)
        sync_console(vm.console, vm.ssh.run)  # what the run made the kernel print is in
    except CommandAborted as exc:
        _keep_output(record, exc.stdout, exc.stderr)
        record.outcome, record.detail = ERROR, exc.reason
        if exc.reason == INTERRUPTED:
            record.outcome = INTERRUPTED
        elif not exc.reason.startswith("kernel report"):
            watch.console.wait_closed(DEATH_WAIT_S)  # SSH broke: is QEMU exiting?
    except CommandTimedOut as exc:
        _keep_output(record, exc.stdout, exc.stderr)
        record.outcome, record.detail = TIMED_OUT, f"still running after {timeout:g} s"
    except GUEST_ERRORS as exc:
        record.outcome, record.detail = ERROR, str(exc)
    return watch, record


def _keep_output(record: RunRecord, stdout: str, stderr: str) -> None:
    """The reproducer's output, its end kept (a program printing without end is bounded)."""
    record.stdout, record.stderr = stdout[-OUTPUT_KEEP:], stderr[-OUTPUT_KEEP:]


def run_once(slot: _Slot, index: int, stop: threading.Event) -> RunRecord:
    guest = "reused" if slot.vm is not None else "fresh"
    start = time.monotonic()
    try:
        vm = slot.vm or slot.boot()
    except ModuleLoadFailure as exc:
        stop.set()  # the same on every guest: no more boots
        return RunRecord(index, slot.number, guest, ERROR, detail=str(exc))
    except (BootError, *GUEST_ERRORS) as exc:
        return RunRecord(index, slot.number, guest, BOOT_FAILURE, detail=str(exc))
    watch, record = _execute(vm, slot.job.timeout, stop, slot.job.args)
    record.index, record.vm, record.guest = index, slot.number, guest
    if record.outcome != INTERRUPTED:
        reports = watch.settle()
        record.reports = reports
        record.titles = [r.title for r in reports]
        if reports:
            record.detail = ""  # the reports say it; "the guest shell ended" adds nothing
        if not reports and watch.console.eof:
            record.titles = [LOST_TITLE]
            record.detail = f"the guest died; last console line {watch.console.last_line()!r}"
        if record.titles:
            record.outcome = CRASH
        record.console = watch.console.text(watch.mark)
    record.seconds = time.monotonic() - start
    why = slot.unhealthy() if record.outcome == NO_CRASH else f"the run ended: {record.outcome}"
    if why is not None:
        record.next_guest = f"not reused: {why}"
        slot.discard(keep_log=record.outcome in (CRASH, ERROR))
    return record


def _worker(
    job: Job,
    number: int,
    todo: queue.Queue[int],
    done: list[RunRecord],
    stop: threading.Event,
    log: Log,
) -> None:
    slot = _Slot(job, number, log)
    try:
        while not stop.is_set():
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            record = run_once(slot, index, stop)
            done.append(record)
            log(record.line(job.runs))
    finally:
        slot.discard(keep_log=False)


def run_all(job: Job, vms: int, log: Log) -> list[RunRecord]:
    """job.runs runs over min(vms, runs) VMs; every VM is stopped on every path."""
    todo: queue.Queue[int] = queue.Queue()
    for index in range(1, job.runs + 1):
        todo.put(index)
    done: list[RunRecord] = []
    stop = threading.Event()
    workers = max(1, min(vms, job.runs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="repro") as pool:
        futures = [
            pool.submit(_worker, job, n, todo, done, stop, log) for n in range(1, workers + 1)
        ]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()  # the workers end their runs (interrupt hook) and stop their VMs
            raise
    return sorted(done, key=lambda r: r.index)
