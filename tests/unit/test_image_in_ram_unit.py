"""The arm64 Image put into guest RAM by the lab (lab/image_in_ram.py): where QEMU would load
it, which images are left to QEMU, what lands in the RAM file, and the argv QEMU and a user get."""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import struct
from pathlib import Path

import pytest

from lab import snapshot
from lab import vm as vm_mod
from lab.errors import LabError
from lab.image_in_ram import LOAD_OFFSET, Preload, load_offset, place, plan
from lab.kernel import Kernel
from lab.log import quiet
from lab.profiles import get_profile
from lab.qemu import QemuSpec, build_argv, firmware_args, portable
from lab.rootfs import Initramfs

# The first 64 bytes of Debian 12's vmlinuz-6.1.0-57-arm64 (an uncompressed Image with the EFI
# stub's "MZ"): text_offset 0, image_size 0x2010000, flags 0xa (LE, 4K pages, anywhere).
DEBIAN_6_1 = bytes.fromhex(
    "4d5a40fa56a35914000000000000000000000102000000000a00000000000000"
    "00000000000000000000000000000000000000000000000041524d6440000000"
)
MIB = 1 << 20
GIB = 1 << 30


def _header(text_offset: int, image_size: int) -> bytes:
    head = bytearray(DEBIAN_6_1)
    struct.pack_into("<QQ", head, 8, text_offset, image_size)
    return bytes(head)


def test_debian_image_goes_2_mib_into_ram() -> None:
    assert load_offset(DEBIAN_6_1, 32_956_352, GIB) == LOAD_OFFSET == 2 * MIB


OTHERS = {
    "text_offset 0x80000 (kernels before 5.8)": _header(0x80000, 0x1000000),
    "no image_size (kernels before 3.17)": _header(0, 0),
    "Image.gz": gzip.compress(DEBIAN_6_1 + bytes(4096), mtime=0)[:64],
    # an EFI zboot image: "zimg" at 4, and at 0x38 the PE magic where an Image has "ARM\x64"
    "EFI zboot": b"MZ\0\0zimg" + bytes(48) + bytes.fromhex("cd238281") + bytes(4),
    "vmlinux": b"\x7fELF\x02\x01\x01" + bytes(57),
    "a file shorter than the header": DEBIAN_6_1[:60],
}


@pytest.mark.parametrize("why", OTHERS)
def test_other_images_are_left_to_qemu(why: str) -> None:
    assert load_offset(OTHERS[why], 32 * MIB, GIB) is None


def test_an_image_that_does_not_fit_in_ram_is_left_to_qemu() -> None:
    """QEMU then says itself that it cannot load it; the lab writes nothing past RAM's end."""
    size = 0x2010000  # image_size, from the header
    assert load_offset(DEBIAN_6_1, 1024, LOAD_OFFSET + size) == LOAD_OFFSET
    assert load_offset(DEBIAN_6_1, 1024, LOAD_OFFSET + size - 1) is None
    assert load_offset(DEBIAN_6_1, size + 1, LOAD_OFFSET + size) is None  # the file is larger


def test_plan_reads_the_header_and_a_missing_image_is_left_to_qemu(tmp_path: Path) -> None:
    image = tmp_path / "Image"
    image.write_bytes(DEBIAN_6_1 + b"kernel text")
    got = plan(image, tmp_path / "hdr", GIB)
    assert got == Preload(image, tmp_path / "hdr", LOAD_OFFSET, GIB)
    assert plan(tmp_path / "missing", tmp_path / "hdr", GIB) is None


def test_place_writes_the_image_at_its_offset_and_sizes_the_ram_file(tmp_path: Path) -> None:
    image = tmp_path / "Image"
    body = DEBIAN_6_1 + os.urandom(3 * MIB + 123)  # more than one sendfile may move
    image.write_bytes(body)
    ram = tmp_path / "guest.ram"
    fd = os.open(ram, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        place(Preload(image, tmp_path / "hdr", LOAD_OFFSET, 64 * MIB), fd, ram)
        assert os.fstat(fd).st_size == 64 * MIB  # QEMU refuses a non-empty smaller file
        assert os.pread(fd, len(body), LOAD_OFFSET) == body
        assert os.pread(fd, LOAD_OFFSET, 0) == bytes(LOAD_OFFSET)
    finally:
        os.close(fd)
    assert (tmp_path / "hdr").read_bytes() == DEBIAN_6_1  # what QEMU reads the layout from


def test_place_failure_is_one_lab_error(tmp_path: Path) -> None:
    image = tmp_path / "Image"
    image.write_bytes(DEBIAN_6_1)
    ram = tmp_path / "ram"
    fd = os.open(ram, os.O_RDONLY | os.O_CREAT, 0o600)  # cannot be written
    try:
        said = rf"could not put .*Image into the guest's RAM file {re.escape(str(ram))}:"
        with pytest.raises(LabError, match=said):
            place(Preload(image, tmp_path / "hdr", LOAD_OFFSET, GIB), fd, ram)
    finally:
        os.close(fd)


def test_an_image_rebuilt_since_the_plan_is_refused(tmp_path: Path) -> None:
    """A retry re-reads the Image: one rebuilt in place that no longer fits is not written."""
    image = tmp_path / "Image"
    image.write_bytes(DEBIAN_6_1)
    preload = plan(image, tmp_path / "hdr", LOAD_OFFSET + 0x2010000)
    assert preload is not None
    image.write_bytes(_header(0, 0x4000000))  # now larger than that RAM
    ram = tmp_path / "ram"
    fd = os.open(ram, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pytest.raises(LabError, match="changed since this VM planned its boot"):
            place(preload, fd, ram)
    finally:
        os.close(fd)
    assert os.stat(ram).st_size == 0


def _spec(**kw: object) -> QemuSpec:
    base: dict[str, object] = dict(
        profile=get_profile("arm64"),
        image=Path("/k/Image"),
        initrd=Path("/k/initramfs.cpio"),
        accel="tcg",
        ram_file=Path("/dev/shm/guest.ram"),
        preload=Preload(Path("/k/Image"), Path("/run/vm/kernel-header.img"), LOAD_OFFSET, GIB),
    )
    base.update(kw)
    return QemuSpec(**base)  # type: ignore[arg-type]


def _kernel(argv: list[str]) -> str:
    return argv[argv.index("-kernel") + 1]


def test_qemu_gets_the_header_and_a_user_gets_the_image() -> None:
    assert _kernel(build_argv(_spec())) == "/run/vm/kernel-header.img"
    assert _kernel(build_argv(portable(_spec()))) == "/k/Image"
    alone = build_argv(portable(_spec(qmp_socket=Path("/run/vm/qmp.sock"))))
    assert alone == build_argv(_spec(preload=None, ram_file=None))  # nothing of the lab's
    assert "-qmp" not in alone and not any("memory-backend" in a for a in alone)


def test_a_preload_without_a_ram_file_is_refused() -> None:
    with pytest.raises(ValueError, match="RAM file"):
        build_argv(_spec(ram_file=None))


def test_the_preload_is_not_part_of_a_snapshot_or_a_restore() -> None:
    """Two VMs' header files differ (each VM's folder); the saved state is the same guest."""
    other = _spec(preload=Preload(Path("/k/Image"), Path("/run/vm2/h"), LOAD_OFFSET, GIB))
    assert snapshot.snapshot_key(_spec(), "k", "i", "7.2") == snapshot.snapshot_key(
        other, "k", "i", "7.2"
    )
    assert snapshot.snapshot_key(_spec(), "k", "i", "7.2") == snapshot.snapshot_key(
        _spec(preload=None), "k", "i", "7.2"
    )
    restore = build_argv(snapshot.restore_spec(_spec(), Path("/run/qmp-in.sock")))
    assert "-kernel" not in restore


def test_firmware_in_the_users_qemu_args_is_seen() -> None:
    """Firmware gets the -kernel file through fw_cfg: the VM then leaves the loading to QEMU."""
    assert firmware_args(("-bios", "QEMU_EFI.fd"))
    assert firmware_args(("-drive", "if=pflash,format=raw,file=efi.img"))
    assert firmware_args(("-pflash", "flash0.img"))
    assert not firmware_args(("-device", "virtio-rng-pci", "-d", "guest_errors"))


def test_only_arm64_puts_its_image_into_ram() -> None:
    assert get_profile("arm64").image_in_ram
    assert not get_profile("x86_64").image_in_ram  # an ELF: QEMU zero-fills its segments


class Spawned(Exception):
    """Raised where QEMU would start: the RAM file is as QEMU would find it."""


def _vm(tmp_path: Path, **options: object) -> vm_mod.VM:
    image = tmp_path / "Image"
    image.write_bytes(DEBIAN_6_1 + b"text" * 1000)
    kernel = Kernel("arm64", "6.1", image, None, None, None, "test", "k")
    initramfs = Initramfs(tmp_path / "initrd", "i", None, False)  # type: ignore[arg-type]
    opts = vm_mod.VMOptions(arch="arm64", memory="128M", workdir=tmp_path / "vm")
    return vm_mod.VM(kernel, initramfs, dataclasses.replace(opts, **options), quiet)


def _spawn(vm: vm_mod.VM) -> None:
    spec = vm.spec("tcg", 2222)
    with pytest.raises(Spawned):
        vm.spawn(build_argv(spec), build_argv(portable(spec)), spec.preload)


def test_every_spawn_puts_the_image_into_a_new_ram_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first boot and each retry (after _kill) start from a new RAM file with the Image at
    2 MiB, whatever the guest wrote before."""
    monkeypatch.setattr(vm_mod.pexpect, "spawn", lambda *a, **k: (_ for _ in ()).throw(Spawned()))
    vm = _vm(tmp_path)
    image = vm.kernel.image.read_bytes()
    try:
        for _ in range(2):
            _spawn(vm)
            assert vm.ram.fd is not None
            assert os.fstat(vm.ram.fd).st_size == 128 * MIB
            assert os.pread(vm.ram.fd, len(image), LOAD_OFFSET) == image
            assert os.pread(vm.ram.fd, 16, 0) == bytes(16)
            assert _kernel(vm.argv) == str(vm.workdir / "kernel-header.img")
            assert _kernel(vm.boot_argv) == str(vm.kernel.image)
            os.pwrite(vm.ram.fd, b"guest wrote this", 0)
            vm._kill()
    finally:
        vm.ram.close()


def test_no_preload_without_shared_ram_or_with_firmware(tmp_path: Path) -> None:
    assert _vm(tmp_path).preload is not None
    assert _vm(tmp_path, shared_ram=False).preload is None
    assert _vm(tmp_path, qemu_args=("-bios", "QEMU_EFI.fd")).preload is None
    assert _vm(tmp_path, memory="128M").preload is not None
    small = _vm(tmp_path)
    small.kernel.image.write_bytes(_header(0, 200 * MIB))  # larger than 128M of RAM
    assert small.preload is None
