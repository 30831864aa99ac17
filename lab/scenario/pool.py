"""The VM pool: at most one live VM per arch, reused while the boot settings match, replaced
after a crash or a timeout; VMs kept after a failure (--keep) and how to reach them.

Snapshots (lab/snapshot.py): with ``fresh`` every scenario gets a VM restored from its boot
configuration's snapshot (saved after the first boot); without it the VM that replaces a
crashed, timed-out or kept one is restored (and the snapshot saved when that boot had none).
A failed restore boots instead, and the VM's boot notes say so."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from lab import reaper, snapshot
from lab.kernel import Kernel, KernelSpec
from lab.log import Log, quiet
from lab.rootfs import Initramfs
from lab.scenario.schema import Boot
from lab.session import prepare
from lab.steplog import Subscriber, step
from lab.vm import VM, VMOptions


@dataclass(frozen=True)
class BootKey:
    """What makes two scenarios able to share a VM."""

    arch: str
    memory: str
    smp: int
    append: tuple[str, ...]

    @classmethod
    def of(cls, arch: str, boot: Boot) -> BootKey:
        return cls(arch, boot.memory, boot.smp, boot.append)


@dataclass(frozen=True)
class Prepared:
    kernel: Kernel
    initramfs: Initramfs


@dataclass(frozen=True)
class Pooled:
    key: BootKey
    vm: VM


@dataclass(frozen=True)
class Baseline:
    """Kernel figures measured after the last healthy scenario on vm: the next one's baseline."""

    vm: VM
    taint: int
    meminfo: dict[str, int]


class VMPool:
    """At most one live VM per arch; reused while the boot settings match."""

    def __init__(
        self,
        kernel: KernelSpec | None = None,
        log: Log = quiet,
        accel: str = "auto",
        keep: bool = False,
        fresh: bool = False,
        snapshots: bool = True,
    ) -> None:
        self.kernel = kernel or KernelSpec()
        self.log = log
        self.accel = accel
        self.keep = keep
        self.fresh = fresh  # every scenario on a VM restored from the snapshot
        self.snapshots = snapshots or fresh  # replace a failed VM by a restored one
        self._replace: set[str] = set()  # arches whose VM was dropped after a failure
        self._prepared: dict[str, Prepared] = {}
        self._vms: dict[str, Pooled] = {}
        self.kept: list[VM] = []
        self.baselines: dict[str, Baseline] = {}
        self.subscribers: tuple[Subscriber, ...] = ()  # of each scenario's step log

    def prepared(self, arch: str) -> Prepared:
        if arch not in self._prepared:
            kernel, initramfs = prepare(arch, self.kernel, log=self.log)
            self._prepared[arch] = Prepared(kernel, initramfs)
        return self._prepared[arch]

    def warm(self, arch: str, boot: Boot) -> bool:
        """Whether get() would reuse a running VM."""
        current = self._vms.get(arch)
        return bool(
            not self.fresh
            and current
            and current.key == BootKey.of(arch, boot)
            and current.vm.alive
        )

    def get(self, arch: str, boot: Boot) -> VM:
        key = BootKey.of(arch, boot)
        current = self._vms.get(arch)
        if self.warm(arch, boot) and current is not None:
            return current.vm
        if current is not None and not current.vm.alive:
            self._replace.add(arch)  # died under the last scenario
        self._drop(arch)
        ready = self.prepared(arch)
        options = VMOptions(
            arch=arch, accel=self.accel, memory=boot.memory, smp=boot.smp, append=boot.append
        )
        vm = VM(ready.kernel, ready.initramfs, options, self.log)
        restore = self.fresh or (self.snapshots and arch in self._replace)
        self._replace.discard(arch)
        with step("vm-start", arch=arch, memory=boot.memory, smp=boot.smp, restore=restore):
            try:
                if restore:
                    snapshot.start(vm)
                else:
                    vm.start()
            except BaseException:
                vm.stop()
                raise
        self._vms[arch] = Pooled(key, vm)
        return vm

    def spec(self) -> dict[str, str | None]:
        """How this pool chose its kernel (what a repro bundle reruns with)."""
        return self.kernel.as_dict()

    def park(self, arch: str) -> None:
        """Keep the arch's VM (a failure to look at) out of reuse; it outlives close()."""
        current = self._vms.pop(arch, None)
        if current:
            self._replace.add(arch)
            self.kept.append(current.vm)
            self.log(f"kept the {arch} VM after a failure: {how_to_reach(current.vm)}")

    def discard(self, arch: str) -> None:
        """Stop the arch's VM after a failure (crash, timeout, lost connection, boot error): the
        next scenario gets a restored one when a snapshot exists."""
        if self._drop(arch):
            self._replace.add(arch)

    def _drop(self, arch: str) -> bool:
        current = self._vms.pop(arch, None)
        if current:
            current.vm.stop()
        return current is not None

    def close(self) -> None:
        """Stop every VM but the kept ones."""
        for arch in list(self._vms):
            self._drop(arch)


def how_to_reach(vm: VM) -> str:
    """The ssh command line for a running VM (host key pinned), and its console log."""
    if vm.ssh is None:
        return f"console {vm.console_log}"
    known = vm.workdir / "known_hosts"
    known.write_text(f"[127.0.0.1]:{vm.ssh.port} {vm.initramfs.keys.host_pub}\n")
    return (
        f"ssh -p {vm.ssh.port} -i {vm.initramfs.keys.client_key} "
        f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes root@127.0.0.1 "
        f"(console {vm.console_log})"
    )


def hold_kept(kept: list[VM], limit: float, log: Log) -> None:
    """Hold the kept VMs (they die with this process) until Ctrl-C, SIGTERM, their own
    shutdown or the time limit; then stop them."""
    for vm in kept:
        log(f"kept {vm.options.arch} VM: {how_to_reach(vm)}")
    log(f"holding the kept VMs for up to {limit:.0f} s: Ctrl-C to stop them now")
    deadline = time.monotonic() + limit
    tick = threading.Event()
    try:
        while time.monotonic() < deadline and any(vm.alive for vm in kept):
            tick.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            reaper.reraise()
        if time.monotonic() >= deadline:
            log(f"--keep-for {limit:.0f} s is over: stopping the kept VMs")
    except KeyboardInterrupt:  # the end the hold offers, not an interruption of the run
        reaper.forget()
        log("stopping the kept VMs")
    finally:
        for vm in kept:
            vm.stop()
