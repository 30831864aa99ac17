"""Debugging a lab guest with gdb through QEMU's gdb stub (loopback only): the command line for
vmlinux, plus ``add-symbol-file`` for multimap at the addresses the guest loaded it at
(/sys/module/multimap/sections), like the kernel's lx-symbols does for every module."""

from __future__ import annotations

from pathlib import Path

from lab.errors import LabError
from lab.guest import Guest

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
