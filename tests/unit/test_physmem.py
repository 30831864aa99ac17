"""The guest-physical token search on a RAM image laid out as multimap-ctl leaves it."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from lab.physmem import PAGE, GuestRAM, RamFile
from lab.profiles import get_profile


def test_a_stray_copy_without_its_closing_word_is_no_hit(tmp_path: Path) -> None:
    token, other = 0x6D6D1234_00000020, 0x6D6D1234_00000001
    ram = bytearray(16 * PAGE)
    # page 3: a real buffer page; page 9: a stack slot that happens to hold the same token
    struct.pack_into("<Q", ram, 3 * PAGE, token)
    struct.pack_into("<Q", ram, 4 * PAGE - 8, token ^ (1 << 64) - 1)
    struct.pack_into("<Q", ram, 9 * PAGE, token)
    struct.pack_into("<Q", ram, 12 * PAGE, other)
    struct.pack_into("<Q", ram, 13 * PAGE - 8, other ^ (1 << 64) - 1)
    path = tmp_path / "ram"
    path.write_bytes(bytes(ram))
    fd = os.open(path, os.O_RDONLY)
    try:
        with GuestRAM(fd, get_profile("arm64"), len(ram)) as guest:
            found = guest.find_page_tokens({token, other, 0x999})
    finally:
        os.close(fd)
    base = get_profile("arm64").ram_base // PAGE  # arm64 virt: RAM starts at 1 GiB
    assert found == {token: [base + 3], other: [base + 12]}


def test_a_ram_file_is_new_per_qemu_private_and_gone_when_closed(tmp_path: Path) -> None:
    workdir = tmp_path / "vm-x86_64-abc"
    workdir.mkdir()
    ram = RamFile(workdir)
    try:
        assert ram.path.name == f"remaplab-{os.getpid()}-vm-x86_64-abc.ram"
        fd = ram.create()
        os.pwrite(fd, b"restored", 0)
        assert ram.create() == fd  # a restore fills it before QEMU's spawn: kept as it is
        assert os.pread(fd, 8, 0) == b"restored"
        assert ram.path.stat().st_mode & 0o777 == 0o600
        os.ftruncate(fd, 4 * PAGE)
        ram.unlink()  # once QEMU runs: the descriptor still reads it
        assert not ram.path.exists()
        x86 = get_profile("x86_64")
        assert ram.mapped(x86, 4 * PAGE) is ram.mapped(x86, 0)
        ram.close()
        assert ram.fd is None
        with pytest.raises(OSError):
            os.fstat(fd)
        fresh = ram.create()  # the next QEMU's: empty again
        assert os.fstat(fresh).st_size == 0
        ram.close()
        with pytest.raises(ValueError, match="is not open"):
            ram.mapped(x86, PAGE)
    finally:
        ram.close()  # nothing left in /dev/shm when an assertion fails
