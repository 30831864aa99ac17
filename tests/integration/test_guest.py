"""A booted guest per arch: commands, exit statuses, files, modules, timeouts, host-key pinning."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import pytest

from lab.errors import GuestTimeout, LabError
from lab.profiles import get_profile
from lab.rootfs import module_name
from lab.ssh import GuestSSH
from lab.vm import VM


def test_uname(vm: VM, arch: str) -> None:
    res = vm.run("uname -m")
    assert res.ok and res.stdout.strip() == get_profile(arch).uname_m
    assert vm.run("uname -r").stdout.strip() == vm.kernel.release


def test_exit_status_and_streams(vm: VM) -> None:
    res = vm.run("echo out; echo err >&2; exit 3")
    assert (res.status, res.stdout, res.stderr) == (3, "out\n", "err\n")


def test_file_roundtrip(vm: VM, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    vm.ssh.put(src, "/tmp/in.bin", mode=0o600)  # type: ignore[union-attr]
    res = vm.run("sha256sum /tmp/in.bin; stat -c %a /tmp/in.bin")
    digest, mode = res.stdout.split()[0], res.stdout.split()[-1]
    assert digest == hashlib.sha256(data).hexdigest() and mode == "600"
    vm.run("cp /tmp/in.bin /tmp/out.bin")
    back = tmp_path / "out.bin"
    vm.ssh.get("/tmp/out.bin", back)  # type: ignore[union-attr]
    assert back.read_bytes() == data
    with pytest.raises(LabError, match="download of guest /nonexistent failed"):
        vm.ssh.get("/nonexistent", tmp_path / "x")  # type: ignore[union-attr]


def test_userland_as_started(vm: VM) -> None:
    """What /init (rootfs/init.c) leaves: the file systems of /etc/fstab and devpts mounted, every
    applet's link made (they are made beside the start-up, waited for before "ready"), and
    busybox init as PID 1 reaping orphans."""
    mounts = {
        line.split()[1]: line.split()[2] for line in vm.run("cat /proc/mounts").stdout.splitlines()
    }
    for where, fs in {
        "/proc": "proc",
        "/sys": "sysfs",
        "/dev": "devtmpfs",
        "/dev/pts": "devpts",
        "/tmp": "tmpfs",
        "/sys/kernel/debug": "debugfs",
    }.items():
        assert mounts.get(where) == fs, (where, mounts)
    res = vm.run("busybox --list-full | while read -r p; do [ -e /$p ] || echo missing /$p; done")
    assert res.ok and res.stdout == "", res.stdout
    assert vm.run("cat /proc/1/cmdline").stdout.split("\0")[:2] == ["/bin/busybox", "init"]
    # an orphan's end is reaped by PID 1: no zombie stays
    vm.run("sh -c 'sleep 0.2 &' ; sleep 1")
    assert " Z " not in vm.run("ps -o pid,stat,comm | grep -v grep").stdout.replace("\t", " ")


def test_any_distro_module_loads(vm: VM) -> None:
    # dummy.ko is not in the initramfs: it comes from the module tree shared over 9p.
    boot = {module_name(m) for m in vm.run("cat /etc/remaplab/boot-modules").stdout.split()}
    assert "dummy" not in boot
    res = vm.run("modprobe dummy && lsmod")
    assert res.ok, res.stderr
    assert any(line.split()[0] == "dummy" for line in res.stdout.splitlines()[1:])
    assert vm.run("rmmod dummy").ok


def test_command_timeout_is_bounded(vm: VM) -> None:
    """The timeout ends the wait, not the command: run() gives up after its timeout and well
    before the command would have ended by itself; the guest answers the next command."""
    runs_for = 120  # the guest command's own duration: the bound a missing timeout would hit
    start = time.monotonic()
    with pytest.raises(GuestTimeout, match="did not finish within 1 s"):
        vm.run(f"sleep {runs_for}", timeout=1)
    waited = time.monotonic() - start
    assert 1 <= waited < runs_for
    assert vm.run("echo still here").stdout == "still here\n"


def test_wrong_host_key_is_refused(vm: VM) -> None:
    stranger = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ2lDuHkfS0Uq5k/7NxmT0zFfhWzJ5gxW3uJqWJ1bYm"
    keys = dataclasses.replace(vm.initramfs.keys, host_pub=stranger)
    assert vm.ssh is not None
    other = GuestSSH(vm.ssh.port, keys)
    with pytest.raises(LabError, match="does not match the pinned key"):
        other.connect(timeout=10)


def test_console_is_logged_and_qmp_answers(vm: VM) -> None:
    assert "remaplab: ready" in vm.console_log.read_text()
    status = vm.connect_qmp().cmd("query-status")
    assert status["status"] == "running"


def test_console_sync_at_any_log_level(vm: VM) -> None:
    """The sync line is at level 0: it reaches the console (True) even after a command lowered
    the console's log level, and everything printed before it is on the console by then."""
    from lab.watch import sync_console

    assert vm.console is not None
    try:
        assert vm.run("dmesg -n 1").ok
        assert vm.run("echo '<0>remaplab-sync-probe-before' > /dev/kmsg").ok
        assert sync_console(vm.console, vm.run)
        assert "remaplab-sync-probe-before" in vm.console.text()
    finally:
        vm.run("dmesg -n 8")
    start = time.monotonic()  # the line could not be written: no wait for it
    assert not sync_console(vm.console, lambda _c, _t: vm.run("false"))
    assert time.monotonic() - start < 1.5


def test_timer_setup_follows_the_accelerator(vm: VM, arch: str) -> None:
    """An x86_64 TCG guest skips the local APIC timer's 100 ms calibration (noapictimer): the
    HPET ticks for both CPUs. Other guests keep their own timer. Either way every CPU's time is
    accounted (ticks reach each CPU) and the clock agrees with sleep."""
    cmdline = vm.run("cat /proc/cmdline").stdout.split()
    skipped = arch == "x86_64" and vm.accel == "tcg"
    assert ("noapictimer" in cmdline) == skipped, cmdline
    assert ("Disabling APIC timer" in vm.run("dmesg").stdout) == skipped
    script = "grep '^cpu[0-9]' /proc/stat; cut -d' ' -f1 /proc/uptime"
    before = vm.run(script).stdout.splitlines()
    vm.run("sleep 1")
    after = vm.run(script).stdout.splitlines()
    assert len(before) == len(after) >= 3, before  # two CPUs, then the uptime
    for old, new in zip(before[:-1], after[:-1], strict=True):
        spent = sum(map(int, new.split()[1:])) - sum(map(int, old.split()[1:]))
        assert spent >= 50, (old, new)  # USER_HZ 100: about 100 a second on each CPU
    assert 0.9 <= float(after[-1]) - float(before[-1]) <= 5.0, (before[-1], after[-1])
