"""The arm64 Image put into guest RAM by the lab (lab/image_in_ram.py): where QEMU would load
it, which images are left to QEMU, what lands in the RAM file, and the argv QEMU and a user get."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import pytest

from lab import snapshot
from lab.errors import LabError
from lab.image_in_ram import LOAD_OFFSET, Preload, load_offset, place, plan
from lab.profiles import get_profile
from lab.qemu import QemuSpec, build_argv, portable

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
    "EFI zboot": b"MZ\0\0zimg" + bytes(56),
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
        place(Preload(image, tmp_path / "hdr", LOAD_OFFSET, 64 * MIB), fd)
        assert os.fstat(fd).st_size == 64 * MIB  # QEMU refuses a file of another size
        assert os.pread(fd, len(body), LOAD_OFFSET) == body
        assert os.pread(fd, LOAD_OFFSET, 0) == bytes(LOAD_OFFSET)
    finally:
        os.close(fd)
    assert (tmp_path / "hdr").read_bytes() == DEBIAN_6_1  # what QEMU reads the layout from


def test_place_failure_is_one_lab_error(tmp_path: Path) -> None:
    image = tmp_path / "Image"
    image.write_bytes(DEBIAN_6_1)
    fd = os.open(tmp_path / "ram", os.O_RDONLY | os.O_CREAT, 0o600)  # cannot be written
    try:
        with pytest.raises(LabError, match=r"could not put .*Image into the guest's RAM file"):
            place(Preload(image, tmp_path / "hdr", LOAD_OFFSET, GIB), fd)
    finally:
        os.close(fd)


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
    assert build_argv(portable(_spec())) == build_argv(_spec(preload=None))


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


def test_only_arm64_puts_its_image_into_ram() -> None:
    assert get_profile("arm64").image_in_ram
    assert not get_profile("x86_64").image_in_ram  # an ELF: QEMU zero-fills its segments
