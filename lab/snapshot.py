"""Snapshots of ready guests: a booted, ready guest (SSH up) is saved once per boot
configuration and later guests start from it instead of booting (``remaplab run --fresh``, the
VM replacing a crashed one).

QEMU's own mechanism: migration to a file.  The saved guest is migrated with
``migrate exec:cat > STATE`` (QEMU 7.2 has no ``file:`` URI) and a new QEMU with the same argv
plus ``-incoming exec:cat STATE`` loads it and runs.  What a restore has to repair:

- virtio-9p blocks migration while mounted: the kernel's module tree is unmounted over SSH
  before the save and mounted again after it (on the saved VM) and after every restore.
  Guests with ``--share`` folders or a gdb stub are never saved.
- The guest RAM is a shared memory-backend-file (the physical witness reads it): every
  instance has its own file; with ``-incoming`` QEMU loads the saved RAM into it.
- User-mode networking forwards a fresh host port per instance (the rule is host-side, set
  up by the new QEMU); the saved guest's TCP connections are gone, dropbear still listens:
  SSH connects anew.
- The guest clock stands where it was saved: it is set from the host after the restore.

The key covers whatever makes the guest state: QEMU's argv without its per-instance parts
(ports, socket and RAM-file paths, the name), which names kernel, initramfs, machine, CPU,
memory and command line; the kernel's and the initramfs's content keys; QEMU's version.
Entries live in the lab cache (``snapshot/<key>``, built under a file lock), at most KEEP of
them, the least recently used go first.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from lab import accel as accel_mod
from lab.cache import Entry, entries, hash_strings, verify_manifest
from lab.errors import LabError
from lab.netutil import free_loopback_port
from lab.qemu import QemuSpec, build_argv, portable
from lab.ram_image import load_ram, save_ram
from lab.readfile import last_line
from lab.steplog import step
from lab.vm import VM

KIND = "snapshot"
STATE = "state"  # the migration stream: device state (and RAM when it is not a shared file)
RAM = "ram"  # guest RAM, sparse, when it is a shared file (migrated with x-ignore-shared)
FORMAT = "3"  # bump when what a snapshot holds changes (e.g. the save/restore commands)
KEEP = 6  # snapshot entries kept (~110 MB on disk each for a 1 GiB guest)
SAVE_TIMEOUT_S = 120.0
RESTORE_TIMEOUT_S = 30.0
GUEST_TIMEOUT_S = 20.0
EVENT_SLICE_S = 0.5  # how often a wait for a QMP event looks whether QEMU still runs
MAX_BANDWIDTH = 1 << 40  # bytes/s: no throttling of a migration to a local file
# Shared file-backed RAM is not in the stream (capability x-ignore-shared): QEMU maps the
# instance's RAM file, which the lab fills from the saved image first (a sparse copy: much
# faster than QEMU loading every page into a fresh shmem file, where each zero page it checks
# is a page fault and an allocation).

MODULE_TREE = "/lib/modules/$(uname -r)/kernel"
MOUNTED = f'grep -q " {MODULE_TREE} 9p " /proc/mounts'  # busybox has no mountpoint applet
UNMOUNT = f'! {MOUNTED} || umount "{MODULE_TREE}"'
# As the guest's /init (rootfs/init.c) mounts it at boot.
MOUNT = (
    f"[ ! -f /etc/remaplab/modules-share ] || {MOUNTED} || "
    f'mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose modules "{MODULE_TREE}"'
)


def repair_command() -> str:
    """What a guest that was saved (or restored) needs before use: the clock set from the host,
    as of now, and the module tree mounted again."""
    return f"date -s @{int(time.time())} >/dev/null; {MOUNT}"


class SnapshotError(LabError):
    """A snapshot could not be saved or restored (the caller boots instead, and says so)."""


def normalized(spec: QemuSpec) -> QemuSpec:
    """spec without its per-instance parts: what two instances of one guest state share."""
    return replace(
        spec,
        name="remaplab",
        qmp_socket=Path("/qmp.sock") if spec.qmp_socket is not None else None,
        qmp_client=False,
        ssh_port=0 if spec.ssh_port is not None else None,
        ram_file=Path("/guest.ram") if spec.ram_file is not None else None,
        incoming=None,
        load_kernel=True,  # a restore leaves them out; the state was booted with them
        preload=None,  # how the kernel got into RAM is not part of the guest's state
    )


def snapshot_key(spec: QemuSpec, kernel_key: str, initramfs_key: str, qemu_version: str) -> str:
    argv = build_argv(normalized(spec))
    digest = hash_strings([FORMAT, kernel_key, initramfs_key, qemu_version, *argv])
    return f"{spec.profile.uname_m}-{digest}"


def restore_spec(spec: QemuSpec, qmp_socket: Path) -> QemuSpec:
    """The spec of an instance started from a saved state: QEMU connects to our QMP server (so
    we learn at once that it runs) and waits for the state (``migrate-incoming``) instead of
    booting.  No kernel, initrd or command line: they are in the saved RAM already (the
    snapshot's key still names them: it is made from the booted instance's argv)."""
    return replace(
        spec,
        qmp_socket=qmp_socket,
        qmp_client=True,
        incoming="defer",
        load_kernel=False,
        preload=None,
    )


def load_commands(state: Path, shared_ram: bool) -> list[tuple[str, dict[str, Any]]]:
    """The QMP commands that make a deferred-incoming QEMU load state (QEMU 7.2 has no file:
    URI: cat streams it)."""
    caps = [{"capability": "x-ignore-shared", "state": True}] if shared_ram else []
    return [
        ("migrate-set-capabilities", {"capabilities": caps}),
        ("migrate-incoming", {"uri": f"exec:cat {shlex.quote(str(state))}"}),
    ]


@functools.cache
def qemu_version(binary: str) -> str:
    return accel_mod._qemu_version(binary)


def unsupported(vm: VM) -> str | None:
    """Why vm's guest cannot be saved or restored, or None."""
    if vm.options.shares:
        return "--share folders are mounted over virtio-9p, which blocks migration"
    if vm.options.gdb_port is not None:
        return "a gdb stub is attached"
    return None


def key_for(vm: VM, accel: str) -> str:
    return snapshot_key(
        vm.spec(accel, 0), vm.kernel.key, vm.initramfs.key, qemu_version(vm.profile.qemu)
    )


def find(key: str) -> Path | None:
    """The saved state for key when a sound one is in the cache (marked as just used)."""
    entry = Entry(KIND, key)
    if not entry.path.is_dir() or verify_manifest(entry.path) is not None:
        return None
    with contextlib.suppress(OSError):
        os.utime(entry.path)
    return entry.path / STATE


# -- waiting on QEMU -----------------------------------------------------------------------


def _event(vm: VM, qmp: Any, names: set[str], deadline: float, what: str) -> dict[str, Any]:
    """The next QMP event named in names; SnapshotError when QEMU exits or deadline passes."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SnapshotError(f"timed out waiting for {what}")
        try:
            event = qmp.pull_event(wait=min(EVENT_SLICE_S, remaining))
        except TimeoutError:
            event = None
        if event is not None and event.get("event") in names:
            return dict(event)
        if not vm.alive:
            raise SnapshotError(f"QEMU exited while waiting for {what}{_said(vm)}")


def _said(vm: VM) -> str:
    said = last_line(vm.qemu_stderr)
    return f"; QEMU said: {said!r}" if said else ""


# -- save ----------------------------------------------------------------------------------


def _migrate(vm: VM, target: Path) -> None:
    """Save vm's running guest into the folder target and let it run on."""
    unmount = vm.run(UNMOUNT, timeout=GUEST_TIMEOUT_S)
    if not unmount.ok:
        raise SnapshotError(f"could not unmount the module tree: {unmount.stderr.strip()}")
    try:
        _migrate_qmp(vm, vm.connect_qmp(), target)
    except SnapshotError:
        raise
    except Exception as exc:  # QMP's own errors (ExecuteError, ConnectError, ...)
        raise SnapshotError(f"migration to a file failed: {exc}") from None
    finally:  # the guest runs on as it was, whatever happened
        remount = vm.run(repair_command(), GUEST_TIMEOUT_S)
    if not remount.ok:
        raise SnapshotError(f"could not mount the module tree again: {remount.stderr.strip()}")


def _migrate_qmp(vm: VM, qmp: Any, target: Path) -> None:
    deadline = time.monotonic() + SAVE_TIMEOUT_S
    try:
        caps = [{"capability": "events", "state": True}]
        if vm.ram.fd is not None:
            caps.append({"capability": "x-ignore-shared", "state": True})
        qmp.cmd("migrate-set-capabilities", capabilities=caps)
        qmp.cmd("migrate-set-parameters", **{"max-bandwidth": MAX_BANDWIDTH})
        qmp.cmd("migrate", uri=f"exec:cat > {shlex.quote(str(target / STATE))}")
        while True:
            event = _event(vm, qmp, {"MIGRATION"}, deadline, "the migration to a file")
            status = event.get("data", {}).get("status")
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                info = qmp.cmd("query-migrate")
                raise SnapshotError(f"migration {status}: {info.get('error-desc', '?')}")
        if vm.ram.fd is not None:  # the guest is stopped (postmigrate): its RAM is still
            save_ram(vm.ram.fd, target / RAM)
    finally:
        if vm.alive and qmp.cmd("query-status").get("status") in ("postmigrate", "paused"):
            qmp.cmd("cont")


def save(vm: VM) -> Path:
    """Save vm's ready guest as its boot configuration's snapshot (once: an existing one is kept);
    the guest runs on.  Returns the state file."""
    why = unsupported(vm)
    if why:
        raise SnapshotError(f"not saved: {why}")
    key = key_for(vm, vm.accel)

    def build(tmp: Path) -> list[str]:
        with step("snapshot-save", key=key):
            _migrate(vm, tmp)
        return []  # 80+ MB: verified by size, not hashed on every use

    path = Entry(KIND, key).ensure(build, vm.log) / STATE
    prune(KEEP)
    return path


def prune(keep: int) -> None:
    """Remove all but the keep most recently used snapshots (skipping any being written)."""
    found = sorted(entries(KIND), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in found[keep:]:
        lock = FileLock(str(path.parent / f".{path.name}.lock"), timeout=0)
        with contextlib.suppress(Timeout, OSError), lock:
            shutil.rmtree(path, ignore_errors=True)


# -- restore -------------------------------------------------------------------------------


def restore(vm: VM, state: Path, accel: str) -> None:
    """Start vm (not yet started) from state: QEMU loads it, SSH connects, the module tree is
    mounted and the clock set.  SnapshotError (or BootError) when it does not come up."""
    from qemu.qmp.legacy import QEMUMonitorProtocol

    start = time.monotonic()
    deadline = start + RESTORE_TIMEOUT_S
    with step("restore", arch=vm.options.arch, state=str(state)) as record:
        port = free_loopback_port()
        sock = vm.workdir / "qmp-in.sock"
        sock.unlink(missing_ok=True)
        qmp = QEMUMonitorProtocol(str(sock), server=True)  # listening before QEMU starts
        vm.qmp = qmp  # VM.stop() quits through it
        qmp.settimeout(10.0)
        ram = state.parent / RAM
        if vm.options.shared_ram:
            if not ram.is_file():
                raise SnapshotError(f"{ram}: the saved guest RAM is missing")
            vm.ram.create()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ram-load") as pool:
            # The RAM file fills while QEMU starts (it maps the file; the guest runs only
            # after migrate-incoming, which waits for the fill).
            filled = pool.submit(load_ram, ram, vm.ram.fd) if vm.ram.fd is not None else None
            spec = vm.spec(accel, port)
            vm.spawn(build_argv(restore_spec(spec, sock)), boot_argv=build_argv(portable(spec)))
            try:
                qmp.accept(timeout=RESTORE_TIMEOUT_S)
                record["qmp_s"] = round(time.monotonic() - start, 3)
                if filled is not None:
                    _filled(filled, ram)
                record["ram_s"] = round(time.monotonic() - start, 3)
                for command, args in load_commands(state, vm.options.shared_ram):
                    qmp.cmd(command, **args)
            except SnapshotError:
                raise
            except Exception as exc:  # QMP's own errors
                raise SnapshotError(
                    f"QEMU did not take the saved state: {exc}{_said(vm)}"
                ) from None
        _event(vm, qmp, {"RESUME"}, deadline, "QEMU to load the saved state")
        record["loaded_s"] = round(time.monotonic() - start, 3)
        vm.ram.unlink()

        # The repair is the connection's first command (one round trip), made per attempt.
        fix = vm.connect_ssh(port, first=repair_command)
        record["ssh_s"] = round(time.monotonic() - start, 3)
        if not fix.ok:
            raise SnapshotError(f"restored guest: mounting the module tree failed: {fix.stderr}")
        vm.boot_seconds = time.monotonic() - start
        record["boot_seconds"] = round(vm.boot_seconds, 3)
    vm.accel, vm.accel_reason = accel, f"restored from a {accel} snapshot"


def _filled(fill: Future[None], ram: Path) -> None:
    try:
        fill.result(timeout=RESTORE_TIMEOUT_S)
    except TimeoutError:
        raise SnapshotError(
            f"filling the RAM file from {ram} took over {RESTORE_TIMEOUT_S:g} s"
        ) from None
    except OSError as exc:  # e.g. ENOSPC on /dev/shm
        raise SnapshotError(f"could not fill the RAM file from {ram}: {exc}") from None


def start(vm: VM, save_missing: bool = True) -> None:
    """Start vm from its boot configuration's snapshot when there is one; else boot it (and,
    with save_missing, save the snapshot for the next time).  A failed restore falls back to a
    boot; every fallback is said in vm.boot_notes."""
    why = unsupported(vm)
    if why is not None:
        vm.start()
        return
    choice = accel_mod.choose(vm.options.accel, vm.profile, vm.kernel.key)
    state = find(key_for(vm, choice.accel)) if choice.probe_key is None else None
    if state is not None:
        try:
            restore(vm, state, choice.accel)
            return
        except (LabError, OSError) as exc:
            vm.kill()
            vm.failed = False
            vm.boot_notes.append(f"snapshot restore failed ({exc}): booted instead")
            vm.log(f"{vm.options.arch}: snapshot restore failed ({exc}); booting instead")
    vm.start()
    if save_missing and vm.boot_reported:
        # Every restore would start from a guest that reported, and say nothing of it.
        vm.boot_notes.append("snapshot not saved: the kernel reported during this boot")
    elif save_missing:
        try:
            save(vm)
        except (LabError, OSError) as exc:
            vm.boot_notes.append(f"snapshot not saved: {exc}")
