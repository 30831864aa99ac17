"""Snapshots: the key (what makes a guest state) and the argv of a restored instance; the sparse
RAM image; which VMs the pool restores."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from lab import ram_image, snapshot
from lab.profiles import get_profile
from lab.qemu import QemuSpec, build_argv
from lab.scenario import pool as pool_mod
from lab.scenario.schema import Boot


def spec(arch: str = "x86_64", **kw: Any) -> QemuSpec:
    base: dict[str, Any] = dict(
        profile=get_profile(arch),
        image=Path("/k/vmlinux"),
        initrd=Path("/k/initramfs.cpio"),
        accel="tcg",
        qmp_socket=Path("/run/vm-1/qmp.sock"),
        ssh_port=40022,
        modules_share=Path("/k/modules/kernel"),
        name="remaplab-x86_64-123-vm-1",
        ram_file=Path("/dev/shm/remaplab-123-vm-1.ram"),
    )
    base.update(kw)
    return QemuSpec(**base)


def key(s: QemuSpec, kernel: str = "k1", initramfs: str = "i1", qemu: str = "7.2") -> str:
    return snapshot.snapshot_key(s, kernel, initramfs, qemu)


def opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_key_ignores_per_instance_parts() -> None:
    other = spec(
        qmp_socket=Path("/run/vm-2/qmp.sock"),
        ssh_port=41234,
        name="remaplab-x86_64-999-vm-2",
        ram_file=Path("/dev/shm/remaplab-999-vm-2.ram"),
    )
    assert key(spec()) == key(other)
    assert key(spec()) == key(snapshot.restore_spec(other, Path("/run/in.sock")))


@pytest.mark.parametrize(
    "change",
    [
        {"memory": "2G"},
        {"smp": 1},
        {"append": ("cma=64M",)},
        {"accel": "kvm"},
        {"image": Path("/k/other-vmlinux")},
        {"initrd": Path("/k/other.cpio")},
        {"qemu_args": ("-icount", "shift=0")},
        {"ram_file": None},
        {"modules_share": None},
    ],
)
def test_key_covers_what_makes_the_guest(change: dict[str, Any]) -> None:
    assert key(spec()) != key(replace(spec(), **change))


def test_key_covers_kernel_initramfs_qemu_and_arch() -> None:
    base = key(spec())
    assert base != key(spec(), kernel="k2")
    assert base != key(spec(), initramfs="i2")
    assert base != key(spec(), qemu="8.0")
    assert key(spec("arm64")).startswith("aarch64-")
    assert base.startswith("x86_64-")


def test_restore_argv_waits_for_the_state_and_connects_to_our_qmp() -> None:
    sock = Path("/run/vm-3/qmp-in.sock")
    boot = build_argv(spec())
    argv = build_argv(snapshot.restore_spec(spec(), sock))
    assert opt(argv, "-incoming") == ["defer"]
    assert opt(argv, "-qmp") == [f"unix:{sock}"]  # QEMU is the client: no server=on
    assert "-incoming" not in boot
    # The saved RAM holds kernel, initrd and command line: QEMU does not load them again.
    for flag in ("-kernel", "-initrd", "-append"):
        assert opt(argv, flag) == [] and len(opt(boot, flag)) == 1
    # Everything else is the boot's argv: the same devices, in the same order.
    strip = {"-incoming", "-qmp"}
    keep = [a for i, a in enumerate(argv) if a not in strip and argv[i - 1] not in strip]
    loads = strip | {"-kernel", "-initrd", "-append"}
    assert keep == [a for i, a in enumerate(boot) if a not in loads and boot[i - 1] not in loads]
    (netdev,) = opt(argv, "-netdev")
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev  # the instance's own port


def test_load_commands_skip_shared_ram_and_quote_the_path() -> None:
    state = Path("/cache/snap shot/state")
    shared = snapshot.load_commands(state, shared_ram=True)
    assert shared[0] == (
        "migrate-set-capabilities",
        {"capabilities": [{"capability": "x-ignore-shared", "state": True}]},
    )
    assert shared[1] == ("migrate-incoming", {"uri": "exec:cat '/cache/snap shot/state'"})
    assert snapshot.load_commands(state, shared_ram=False)[0][1] == {"capabilities": []}


def test_ram_image_round_trip_is_sparse(tmp_path: Path) -> None:
    size = 64 * ram_image.CHUNK
    ram = tmp_path / "guest.ram"
    fd = os.open(ram, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, size)
        os.pwrite(fd, b"\x01" * 100, 3 * ram_image.CHUNK + 7)
        os.pwrite(fd, bytes(ram_image.CHUNK), 10 * ram_image.CHUNK)  # written zeros: a hole
        os.pwrite(fd, b"end", size - 3)
        image = tmp_path / "ram"
        assert ram_image.save_ram(fd, image) == 2 * ram_image.CHUNK
    finally:
        os.close(fd)
    assert image.stat().st_size == size
    assert image.stat().st_blocks * 512 < size // 4
    new = os.open(tmp_path / "new.ram", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        ram_image.load_ram(image, new)
    finally:
        os.close(new)
    assert (tmp_path / "new.ram").read_bytes() == ram.read_bytes()


def test_prune_keeps_the_most_recently_used(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("REMAPLAB_CACHE", str(tmp_path))
    parent = tmp_path / snapshot.KIND
    for n in range(5):
        (parent / f"k{n}").mkdir(parents=True)
        os.utime(parent / f"k{n}", (1000 + n, 1000 + n))
    snapshot.prune(2)
    assert sorted(p.name for p in parent.iterdir() if not p.name.startswith(".")) == ["k3", "k4"]


# -- the pool: which VMs are restored --------------------------------------------------------


@dataclass
class FakeVM:
    options: Any
    started: list[str] = field(default_factory=list)
    alive: bool = True
    boot_notes: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.started.append("boot")

    def stop(self) -> None:
        self.alive = False


def fake_pool(monkeypatch: Any, fresh: bool = False) -> tuple[pool_mod.VMPool, list[str]]:
    how: list[str] = []
    monkeypatch.setattr(pool_mod, "VM", lambda _k, _i, options, _log: FakeVM(options))
    monkeypatch.setattr(FakeVM, "start", lambda self: how.append("boot"))
    monkeypatch.setattr(pool_mod.snapshot, "start", lambda vm: how.append("restore"))
    pool = pool_mod.VMPool(fresh=fresh)
    pool._prepared["x86_64"] = pool_mod.Prepared(None, None)  # type: ignore[arg-type]
    return pool, how


def test_pool_restores_the_vm_replacing_a_failed_one(monkeypatch: Any) -> None:
    pool, how = fake_pool(monkeypatch)
    boot = Boot()
    first = pool.get("x86_64", boot)
    assert pool.get("x86_64", boot) is first  # reused while healthy
    pool.discard("x86_64")  # the runner, after a crash or a timeout
    pool.get("x86_64", boot)
    pool.get("x86_64", Boot(memory="2G"))  # other settings: a plain boot, not a replacement
    assert how == ["boot", "restore", "boot"]


def test_pool_restores_after_the_vm_died(monkeypatch: Any) -> None:
    pool, how = fake_pool(monkeypatch)
    vm = pool.get("x86_64", Boot())
    vm.alive = False  # type: ignore[misc]
    pool.get("x86_64", Boot())
    assert how == ["boot", "restore"]


def test_fresh_pool_restores_for_every_scenario(monkeypatch: Any) -> None:
    pool, how = fake_pool(monkeypatch, fresh=True)
    assert not pool.warm("x86_64", Boot())
    first = pool.get("x86_64", Boot())
    assert not pool.warm("x86_64", Boot())
    assert pool.get("x86_64", Boot()) is not first
    assert how == ["restore", "restore"]
    assert not first.alive
