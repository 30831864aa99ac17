"""What a kernel image file is, read from its header: so that a file QEMU cannot boot for the
guest's arch (a text file, an x86 bzImage for an arm64 guest, a module, a vmlinux without the
PVH note QEMU's x86 loader needs) is refused with one line before any VM, instead of QEMU's
"linux kernel too old to load a ram disk".

The headers, from the kernel's Documentation/arch/x86/boot.rst and arm64/booting.rst: a
bzImage has 0xAA55 at 0x1FE and "HdrS" at 0x202; an arm64 Image has "ARM\\x64" at 0x38 (both
may start with an EFI stub's "MZ"); an EFI zboot image has "zimg" at 4; an ELF file names its
machine (e_machine) and type (e_type: a kernel is EXEC, a module REL)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

from lab.errors import LabError

ELF_MACHINES = {62: "x86_64", 183: "arm64", 3: "i386", 40: "arm", 243: "riscv"}
ELF_EXEC = 2
ELF_DYN = 3
HEADER_BYTES = 0x240
# What QEMU boots with -kernel, per guest arch (anything else is refused).
BOOTABLE = {
    "x86_64": {"a bzImage", "an ELF x86_64 kernel"},
    "arm64": {"an arm64 Image", "a gzip arm64 Image", "an EFI zboot image", "an ELF arm64 kernel"},
}
WANTED = {
    "x86_64": "a bzImage (arch/x86/boot/bzImage) or a vmlinux with the PVH note",
    "arm64": "an Image (arch/arm64/boot/Image), Image.gz or vmlinux",
}


# a vmlinux has its init code (and a head, a symbol table for modules); a program has none
KERNEL_SECTIONS = (".init.text", ".head.text", "__ksymtab")


def _kernel_sections(path: Path) -> bool:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with path.open("rb") as fh:
            elf = ELFFile(fh)
            return any(elf.get_section_by_name(name) is not None for name in KERNEL_SECTIONS)
    except (ELFError, OSError, ValueError):
        return False


def _elf(head: bytes, path: Path) -> str:
    if len(head) < 20 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return "a truncated ELF file"
    order = "<" if head[5] == 1 else ">"
    e_type, e_machine = struct.unpack(order + "HH", head[16:20])
    machine = ELF_MACHINES.get(e_machine, f"machine {e_machine}")
    # a relocatable kernel (arm64 with CONFIG_RELOCATABLE, as defconfig) is linked -shared;
    # a static program is an executable as much as a vmlinux: its sections tell them apart
    if e_type in (ELF_EXEC, ELF_DYN) and _kernel_sections(path):
        return f"an ELF {machine} kernel"
    kinds = {1: "module or object file", 2: "program", 3: "program or library"}
    return f"an ELF {machine} {kinds.get(e_type, 'file')} (e_type {e_type})"


def _gunzipped_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(HEADER_BYTES)
    except (OSError, EOFError, zlib.error):
        return b""


def identify(path: Path) -> str:
    """What path holds, in a few words ("a bzImage", "an arm64 Image", "an ELF x86_64 kernel",
    "text", ...)."""
    with path.open("rb") as fh:
        head = fh.read(HEADER_BYTES)
    if head.startswith(b"\x7fELF"):
        return _elf(head, path)
    if head[0x1FE:0x200] == b"\x55\xaa" and head[0x202:0x206] == b"HdrS":
        return "a bzImage"
    if head[0x38:0x3C] == b"ARM\x64":
        return "an arm64 Image"
    if head.startswith(b"MZ") and head[4:8] == b"zimg":
        return "an EFI zboot image"
    if head.startswith(b"\x1f\x8b"):
        inner = _gunzipped_head(path)
        return "a gzip arm64 Image" if inner[0x38:0x3C] == b"ARM\x64" else "gzip data"
    if not head:
        return "an empty file"
    if b"\0" not in head:
        return "text"
    return "binary data of no kernel format"


def check_image(path: Path, arch: str) -> str:
    """path's format when QEMU can boot it for arch; a LabError saying what it is otherwise."""
    try:
        kind = identify(path)
    except OSError as exc:
        raise LabError(f"kernel image {path}: cannot read: {exc.strerror or exc}") from None
    if kind not in BOOTABLE.get(arch, {kind}):
        raise LabError(f"kernel image {path}: {kind}, not an {arch} kernel: pass {WANTED[arch]}")
    return kind
