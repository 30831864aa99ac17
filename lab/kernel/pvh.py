"""x86 PVH boot: QEMU can start an ELF vmlinux directly at its PVH entry point, skipping the
firmware and the in-guest decompressor.  Debian ships only the bzImage, whose payload is an XZ
stream holding the ELF vmlinux."""

from __future__ import annotations

import lzma
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection

from lab.errors import LabError

XZ_MAGIC = b"\xfd7zXZ\x00"
ELF_MAGIC = b"\x7fELF"
XEN_ELFNOTE_PHYS32_ENTRY = 18


def is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == ELF_MAGIC


def has_pvh_note(path: Path) -> bool:
    """True when the ELF has the Xen PHYS32_ENTRY note that QEMU's PVH loader looks for."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        for section in elf.iter_sections():
            if not isinstance(section, NoteSection):
                continue
            for note in section.iter_notes():
                if note["n_name"] == "Xen" and note["n_type"] in (
                    XEN_ELFNOTE_PHYS32_ENTRY,
                    "XEN_ELFNOTE_PHYS32_ENTRY",
                ):
                    return True
        for segment in elf.iter_segments():
            if segment["p_type"] != "PT_NOTE":
                continue
            for note in segment.iter_notes():  # type: ignore[attr-defined]
                if note["n_name"] == "Xen" and note["n_type"] in (
                    XEN_ELFNOTE_PHYS32_ENTRY,
                    "XEN_ELFNOTE_PHYS32_ENTRY",
                ):
                    return True
    return False


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF vmlinux inside a bzImage whose payload is XZ-compressed."""
    start = bzimage.find(XZ_MAGIC)
    while start != -1:
        decomp = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            data = decomp.decompress(bzimage[start:])
        except lzma.LZMAError:
            data = b""
        if data.startswith(ELF_MAGIC):
            return data
        start = bzimage.find(XZ_MAGIC, start + 1)
    raise LabError("no XZ-compressed ELF vmlinux found inside the bzImage")
