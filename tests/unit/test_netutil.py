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


def test_real_ports_are_distinct_and_bindable() -> None:
    import socket

    ports = {netutil.free_loopback_port() for _ in range(8)}
    assert len(ports) == 8
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))
