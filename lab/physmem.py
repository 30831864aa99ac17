"""Guest-physical memory, read from outside the guest.

QEMU keeps the guest's RAM in a shared file (memory-backend-file, share=on); the host maps it
read-only and so sees guest-physical memory without trusting the guest kernel.  Tokens written
through a user mapping are located there, which gives each page's physical address."""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path

from lab.profiles import Profile

PAGE = 4096
ALL_ONES = (1 << 64) - 1


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def offset_to_gpa(profile: Profile, ram_size: int, offset: int) -> int:
    """Guest-physical address of byte `offset` of the RAM backend."""
    if profile.ram_low_limit and ram_size >= 0xB0000000:  # q35/pc split below 4 GiB
        low = profile.ram_low_limit
        return offset if offset < low else (1 << 32) + (offset - low)
    return profile.ram_base + offset


def ram_pfn_ranges(profile: Profile, ram_size: int) -> list[tuple[int, int]]:
    """The guest-physical PFN ranges [first, end) the RAM backend covers."""
    pages = ram_size // PAGE
    if profile.ram_low_limit and ram_size >= 0xB0000000:
        low = profile.ram_low_limit // PAGE
        return [(0, low), ((1 << 32) // PAGE, (1 << 32) // PAGE + pages - low)]
    base = profile.ram_base // PAGE
    return [(base, base + pages)]


def sweep_stale(directory: Path) -> None:
    """Remove RAM files of lab processes that died before unlinking them."""
    for path in directory.glob("remaplab-*.ram"):
        try:
            pid = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(PermissionError):  # another user's, in sticky /dev/shm
                path.unlink(missing_ok=True)


class GuestRAM:
    def __init__(self, fd: int, profile: Profile, size: int) -> None:
        self.profile = profile
        self.size = size
        self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)

    def close(self) -> None:
        self._map.close()

    def holds(self, pfn: int) -> bool:
        """Whether guest-physical page pfn is RAM this witness can see (not device memory)."""
        return any(a <= pfn < b for a, b in ram_pfn_ranges(self.profile, self.size))

    def __enter__(self) -> GuestRAM:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def find_page_tokens(self, tokens: set[int]) -> dict[int, list[int]]:
        """For each token, the PFNs of the pages that hold it in their first 8 bytes and its
        complement in their last 8 (as multimap-ctl writes them): a stray copy of a token in
        some other page (a stack slot, say) has no closing word, so it is not a hit."""
        found: dict[int, list[int]] = {}
        base = memoryview(self._map)
        quads = base.cast("Q")
        firsts = quads[:: PAGE // 8]
        lasts = quads[PAGE // 8 - 1 :: PAGE // 8]
        try:
            for index, word in enumerate(firsts):
                if word in tokens and lasts[index] == word ^ ALL_ONES:
                    gpa = offset_to_gpa(self.profile, self.size, index * PAGE)
                    found.setdefault(word, []).append(gpa // PAGE)
        finally:
            lasts.release()
            firsts.release()
            quads.release()
            base.release()
        return found


class RamFile:
    """A VM's guest RAM as a host file (memory-backend-file, share=on), in /dev/shm when it can
    be written, else the VM's folder: made anew and empty for each QEMU, unlinked once QEMU runs
    (QEMU's mapping and our descriptor keep it: nothing is left if we die), mapped read-only
    for the guest-physical witness."""

    def __init__(self, workdir: Path) -> None:
        shm = Path("/dev/shm")
        folder = shm if shm.is_dir() and os.access(shm, os.W_OK) else workdir
        sweep_stale(folder)
        self.path = folder / f"remaplab-{os.getpid()}-{workdir.name}.ram"
        self.fd: int | None = None
        self._mapped: GuestRAM | None = None

    def create(self) -> int:
        """The open file for the next QEMU: a new empty one unless one is open already."""
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        return self.fd

    def unlink(self) -> None:
        """Take the name away (the open file stays for QEMU and us)."""
        self.path.unlink(missing_ok=True)

    def mapped(self, profile: Profile, size: int) -> GuestRAM:
        """The open file mapped read-only (once: unmapping 1 GiB costs more than searching it)."""
        if self.fd is None:
            raise ValueError(f"{self.path} is not open")
        if self._mapped is None:
            self._mapped = GuestRAM(self.fd, profile, size)
        return self._mapped

    def close(self) -> None:
        """Unlink, unmap and close: the QEMU that used it is gone."""
        self.unlink()
        if self._mapped is not None:
            self._mapped.close()
            self._mapped = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
