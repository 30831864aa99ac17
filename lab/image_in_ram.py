"""An arm64 kernel Image put into the guest's RAM file by the lab, QEMU given only its header.

QEMU 7.2 loads an arm64 ``-kernel`` Image by reading the whole file twice, copying it into a ROM
blob and copying that into guest RAM: 0.08-0.16 s of every boot of Debian's 33 MB Image, most
of it page faults.  The guest's RAM is a file the lab creates anyway (the guest-physical
witness), so the lab writes the Image there itself (one ``sendfile`` into tmpfs, ~0.02 s) and
hands QEMU a file holding only the Image's 64-byte header: QEMU reads the same ``text_offset``
and ``image_size`` from it, so it lays out the kernel, the initrd and the device tree exactly as
before, and writes back the 64 bytes that are already there.  The guest sees the same memory.

Where QEMU puts an Image (hw/arm/boot.c, ``load_aarch64_image``, since QEMU 3.0): RAM's start
plus ``text_offset``, plus 2 MiB when that offset would overlap QEMU's 4 KiB boot stub.  Only
the case every kernel since 5.8 has (``text_offset`` 0, so 2 MiB) is taken over; anything else
(an old kernel, a compressed or EFI zboot image, an ELF vmlinux, an Image larger than RAM) is
left to QEMU, which loads it as it always did."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lab.errors import LabError

HEADER_SIZE = 64  # the arm64 Image header (Documentation/arch/arm64/booting.rst)
MAGIC_OFFSET = 56
MAGIC = b"ARM\x64"
LOAD_OFFSET = 2 << 20  # text_offset 0: QEMU loads the Image 2 MiB into RAM


@dataclass(frozen=True)
class Preload:
    image: Path  # the kernel Image, written into guest RAM
    header: Path  # a copy of its header: what QEMU is given as -kernel
    offset: int  # where in the RAM file the Image goes
    memory: int  # the RAM file's size in bytes (QEMU refuses a non-empty file smaller than -m)


def load_offset(header: bytes, file_size: int, memory: int) -> int | None:
    """The RAM offset at which QEMU would load the Image with this header, or None when the lab
    leaves the loading to QEMU (no arm64 Image header, text_offset not 0, no image_size, or the
    Image does not fit in memory bytes of RAM)."""
    if len(header) < HEADER_SIZE or header[MAGIC_OFFSET : MAGIC_OFFSET + 4] != MAGIC:
        return None
    text_offset, image_size = struct.unpack_from("<QQ", header, 8)
    if text_offset != 0 or image_size == 0:
        return None
    if LOAD_OFFSET + max(image_size, file_size) > memory:
        return None
    return LOAD_OFFSET


def _head(f: BinaryIO) -> tuple[bytes, int]:
    """An open image's header bytes and its size."""
    return f.read(HEADER_SIZE), os.fstat(f.fileno()).st_size


def plan(image: Path, header: Path, memory: int) -> Preload | None:
    """The preload of image into memory bytes of RAM (its header to be written at header), or
    None when QEMU is to load it (see load_offset; an unreadable image: QEMU says why)."""
    try:
        with image.open("rb") as f:
            head, size = _head(f)
    except OSError:
        return None
    offset = load_offset(head, size, memory)
    return None if offset is None else Preload(image, header, offset, memory)


def place(preload: Preload, ram_fd: int, ram_path: Path) -> None:
    """Write the Image into the (new, empty) RAM file ram_fd (at ram_path), size the file as
    QEMU wants it, and write the header file QEMU is given.  LabError when the host cannot (a
    full tmpfs) or the Image is no longer what the plan read (rebuilt in place)."""
    try:
        with preload.image.open("rb") as src:
            head, size = _head(src)
            if load_offset(head, size, preload.memory) != preload.offset:
                raise LabError(f"{preload.image} changed since this VM planned its boot")
            os.lseek(ram_fd, preload.offset, os.SEEK_SET)
            done = 0
            while done < size:
                sent = os.sendfile(ram_fd, src.fileno(), done, size - done)
                if sent == 0:
                    raise LabError(f"{preload.image} ended at byte {done} of {size}")
                done += sent
        os.ftruncate(ram_fd, preload.memory)
        preload.header.write_bytes(head)
    except OSError as exc:
        raise LabError(
            f"could not put {preload.image} into the guest's RAM file {ram_path}: {exc}"
        ) from None


def note(preload: Preload, alone: str) -> str:
    """What qemu-argv.txt says after QEMU's argv: what the lab did, and alone, the (rendered)
    argv that boots the same guest with QEMU alone."""
    return (
        f"# remaplab put {preload.image} into the guest's RAM at byte {preload.offset:#x}"
        f" (lab/image_in_ram.py); with QEMU alone:\n# {alone}\n"
    )
