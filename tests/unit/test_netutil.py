"""Loopback ports are reserved across remaplab processes (pytest-xdist workers, shards on one
machine): a port another process holds is never handed out, nor one this process holds."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import netutil

HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
"""


def kernel_ports(monkeypatch: pytest.MonkeyPatch, ports: list[int]) -> None:
    it: Iterator[int] = iter(ports)
    monkeypatch.setattr(netutil, "_kernel_port", lambda: next(it))


@pytest.fixture(autouse=True)
def fresh(tmp_cache: Path) -> Iterator[None]:
    yield
    for port in netutil.held_ports():
        netutil.release_port(port)


def test_a_port_this_process_holds_is_not_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel_ports(monkeypatch, [40001, 40001, 40002])
    assert netutil.free_loopback_port() == 40001
    assert netutil.free_loopback_port() == 40002
    netutil.release_port(40001)
    kernel_ports(monkeypatch, [40001])
    assert netutil.free_loopback_port() == 40001


def test_a_port_another_process_holds_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = netutil.ports_dir() / "40011.lock"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        kernel_ports(monkeypatch, [40011, 40012])
        assert netutil.free_loopback_port() == 40012
        holder.communicate(b"", timeout=30)  # the holder exits: its lock goes with it
    kernel_ports(monkeypatch, [40011])
    assert netutil.free_loopback_port() == 40011


def test_reservations_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel_ports(monkeypatch, list(range(41000, 41000 + netutil.HOLD_MAX + 5)))
    got = [netutil.free_loopback_port() for _ in range(netutil.HOLD_MAX + 5)]
    assert len(set(got)) == len(got)
    assert netutil.held_ports() == got[5:]  # the oldest were released


def test_a_released_port_leaves_no_lock_file(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel_ports(monkeypatch, [40021])
    port = netutil.free_loopback_port()
    lock = netutil.ports_dir() / f"{port}.lock"
    assert lock.exists()
    netutil.release_port(port)
    assert not lock.exists()


def test_a_lock_on_a_file_released_meanwhile_is_not_a_reservation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process opened the lock file, then its holder released (unlinked) it: locking the
    orphaned file reserves nothing (a third process may hold the new file), so the port is
    skipped."""
    lock = netutil.ports_dir() / "40031.lock"
    real_flock = netutil.fcntl.flock

    def flock_after_unlink(fd: int, op: int) -> None:
        lock.unlink(missing_ok=True)  # the holder's release, between our open and our flock
        real_flock(fd, op)

    monkeypatch.setattr(netutil.fcntl, "flock", flock_after_unlink)
    kernel_ports(monkeypatch, [40031, 40032])
    assert netutil.free_loopback_port() == 40032


def test_lock_files_nobody_holds_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead process's lock files go; a live holder's, and this process's, stay."""
    ports = netutil.ports_dir()
    kernel_ports(monkeypatch, [40043])
    mine = netutil.free_loopback_port()  # (a process's first reservation sweeps too)
    for port in (40041, 40042):
        (ports / f"{port}.lock").touch()
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ports / "40044.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert netutil.sweep_locks() == 2
        holder.communicate(b"", timeout=30)
    assert sorted(p.name for p in ports.iterdir()) == [f"{mine}.lock", "40044.lock"]


def test_real_ports_are_distinct_and_bindable() -> None:
    import socket

    ports = {netutil.free_loopback_port() for _ in range(8)}
    assert len(ports) == 8
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))
