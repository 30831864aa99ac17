"""The guest-physical token search on a RAM image laid out as multimap-ctl leaves it."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from lab.physmem import PAGE, GuestRAM
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
