"""Debugging a lab guest with gdb through QEMU's gdb stub (loopback only): the command line for
the kernel's symbols (the build tree's vmlinux, else the booted image when it has them), plus
``add-symbol-file`` for multimap and the user's modules at the addresses the guest loaded them at
(/sys/module/NAME/sections), like the kernel's lx-symbols does for every module."""

from __future__ import annotations

from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from lab.errors import LabError
from lab.guest import Guest
from lab.kernel import Kernel

SECTIONS = (".text", ".data", ".bss", ".rodata")


def module_sections(vm: Guest, name: str = "multimap") -> dict[str, int]:
    """Section -> load address of a module loaded in the guest (root can read them)."""
    paths = " ".join(f"/sys/module/{name}/sections/{s}" for s in SECTIONS)
    res = vm.run(f"for f in {paths}; do [ -r $f ] && echo ${{f##*/}} $(cat $f); done")
    sections = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("0x"):
            sections[parts[0]] = int(parts[1], 16)
    if ".text" not in sections:
        raise LabError(f"module {name} is not loaded in the guest (no sections in /sys/module)")
    return sections


def add_symbol_file(ko: Path, sections: dict[str, int]) -> str:
    cmd = f"add-symbol-file {ko} {sections['.text']:#x}"
    for name in SECTIONS[1:]:
        if name in sections:
            cmd += f" -s {name} {sections[name]:#x}"
    return cmd


def gdb_argv(vmlinux: Path, port: int, module_cmds: tuple[str, ...] = ()) -> list[str]:
    argv = ["gdb", "-q", str(vmlinux), "-ex", f"target remote 127.0.0.1:{port}"]
    for cmd in module_cmds:
        argv += ["-ex", cmd]
    return argv


def has_symbols(path: Path) -> bool:
    """Whether path is an ELF file with a symbol table (a stripped vmlinux, an arm64 Image or a
    bzImage has none)."""
    try:
        with path.open("rb") as fh:
            symtab = ELFFile(fh).get_section_by_name(".symtab")
            return symtab is not None and symtab.data_size > 0
    except (OSError, ELFError):
        return False


def kernel_symbols(kernel: Kernel) -> tuple[Path, str | None]:
    """The file gdb reads the kernel's symbols from, and a warning when there is none."""
    found = [kernel.kdir / "vmlinux"] if kernel.kdir is not None else []
    for path in [*found, kernel.image]:
        if has_symbols(path):
            return path, None
    return kernel.image, (
        f"{kernel.image} has no symbols for gdb ({kernel.identity}: a distribution's image is "
        "stripped); for source-level debugging boot a kernel with them: --lab-kernel lab, or "
        "--kernel/--kdir of your own build"
    )
