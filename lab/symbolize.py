"""Stack frames of a kernel report decoded to file:line, the way the kernel's
scripts/decode_stacktrace.sh does it: the symbol's address from ``nm``, plus the frame's offset
(minus one for return addresses, so the line is the call's), through ``addr2line -fip``.

A module (.ko) is a relocatable object: every section starts at 0 and a symbol's value counts
from the start of its own section, so its symbols come from the ELF symbol table with their
sections and addr2line is told the section (``-j .exit.text``).  Without it an address in
.init.text, .exit.text or .text.unlikely would be read as one in .text (another function's line).

Objects: the kernel's vmlinux when it carries debug info (the lab-built kernel does) and any
module built with it (multimap always is).  Frames of objects we do not have stay as they are.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from lab.build import build_module
from lab.crash import Report
from lab.errors import LabError
from lab.kernel.base import Kernel
from lab.log import quiet
from lab.profiles import get_profile

# "RIP: 0010:bad_page+0xef/0x10b", " multimap_free_pages+0x42/0x7c [multimap]",
# "pc : foo+0x1c/0x40 [multimap]", " ? do_munmap+0x3a7/0x3ef" (unreliable: skipped).
FRAME = re.compile(
    r"(?P<pc>RIP: [0-9a-f]{4}:|pc : |lr : )?"
    r"(?<![\w.?])(?P<func>[A-Za-z_][\w.]*)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)"
    r"(?: \[(?P<mod>\w+)(?: [A-Z]+)?\])?"
)
UNRELIABLE = re.compile(r"^\s*(\[[ \d.]+\]\s*)?(\[\s*T?C?\d+\]\s*)?\? ")
# Build paths that mean nothing to a reader, shortened: the module's temporary build folder,
# the kernel source or headers tree.
PATH_REWRITES = (
    (re.compile(r"^.*/modules/\.[^/]+\.tmp-\d+/src/"), "module/"),
    (re.compile(r"^.*/usr/src/linux-headers-[^/]+/"), ""),
    (re.compile(r"^.*/kernel-src/[^/]+/linux-source-[^/]+/"), ""),
)


@dataclass(frozen=True)
class Frame:
    line: int  # index in the report's lines
    func: str
    offset: int
    size: int
    module: str | None  # None: vmlinux
    is_pc: bool


@dataclass(frozen=True)
class Symbol:
    value: int
    size: int
    # A relocatable object's section: the value counts from its start.  None: an absolute
    # address (vmlinux).
    section: str | None = None


# __warn(): "WARNING: CPU: 0 PID: 1 at drivers/x.c:28 x_mmap+0x40/0x80 [x]": the trapping address.
WARNING_AT = re.compile(r"WARNING: CPU: \d+ PID: \d+ at ")
TRACE_HEADING = re.compile(r"Call [Tt]race:")


def parse_frames(text: str) -> list[Frame]:
    """The reliable frames of a report.  A frame is a PC (its own line, not the call's) on a
    RIP:/pc : line, on a WARNING line, and in a call trace where it repeats a PC: arm64's trace
    starts with the trapping pc itself."""
    frames: list[Frame] = []
    pcs: set[tuple[str | None, str, int]] = set()
    trace_start = False  # the next frame is a trace's first: the pc itself when it repeats one
    for index, line in enumerate(text.splitlines()):
        if TRACE_HEADING.search(line):
            trace_start = True
        if UNRELIABLE.match(line):
            continue
        m = FRAME.search(line)
        if not m:
            continue
        key = (m["mod"], m["func"], int(m["off"], 16))
        is_pc = bool(m["pc"]) and not m["pc"].startswith("lr")
        is_pc = is_pc or bool(WARNING_AT.search(line, 0, m.start()))
        is_pc = is_pc or (trace_start and key in pcs)
        trace_start = False
        if is_pc:
            pcs.add(key)
        frames.append(Frame(index, m["func"], key[2], int(m["size"], 16), m["mod"], is_pc))
    return frames


def shorten(path: str, extra: tuple[tuple[str, str], ...] = ()) -> str:
    for prefix, repl in extra:
        if path.startswith(prefix):
            return repl + path[len(prefix) :]
    for pattern, repl in PATH_REWRITES:
        path, n = pattern.subn(repl, path, count=1)
        if n:
            break
    return path


class Symbolizer:
    """Decodes frames against vmlinux (module None) and named modules' .ko files."""

    def __init__(
        self,
        objects: dict[str | None, Path],
        cross_compile: str = "",
        roots: tuple[Path, ...] = (),
    ) -> None:
        self.objects = {k: v for k, v in objects.items() if v is not None and v.exists()}
        self.roots = tuple((f"{r.resolve()}/", "") for r in roots)
        self.nm = f"{cross_compile}nm"
        self.addr2line = f"{cross_compile}addr2line"
        self._symbols: dict[str | None, dict[str, list[Symbol]]] = {}

    def symbols(self, module: str | None) -> dict[str, list[Symbol]]:
        if module not in self._symbols:
            obj = self.objects[module]
            table = relocatable_code_symbols(obj)
            if table is None:  # vmlinux (or not ELF: nm finds nothing)
                table = {}
                proc = subprocess.run(
                    [self.nm, "-S", "--defined-only", str(obj)],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                for line in proc.stdout.splitlines():
                    parts = line.split()
                    if len(parts) == 4 and parts[2] in "tTwW":
                        sym = Symbol(int(parts[0], 16), int(parts[1], 16))
                        table.setdefault(parts[3], []).append(sym)
            self._symbols[module] = table
        return self._symbols[module]

    def address(self, frame: Frame) -> tuple[str | None, int] | None:
        """(section, address): the section for addr2line -j (None: vmlinux, absolute)."""
        table = self.symbols(frame.module)
        candidates = table.get(frame.func)
        if not candidates:  # kallsyms may drop a compiler suffix (.part.0, .isra.0, .cold)
            candidates = next(
                (v for k, v in table.items() if k.split(".", 1)[0] == frame.func), None
            )
        if not candidates:
            return None
        sym = next((c for c in candidates if c.size == frame.size), candidates[0])
        return sym.section, sym.value + frame.offset - (0 if frame.is_pc else 1)

    def locate(
        self, module: str | None, addresses: list[int], section: str | None = None
    ) -> dict[int, str]:
        """address -> 'file:line' (innermost), with ' (inlined by ...)' chain when inlined.
        section: the addresses count from that section's start (a relocatable object's)."""
        proc = subprocess.run(
            [self.addr2line, "-e", str(self.objects[module]), "-f", "-i", "-p", "-a"]
            + (["-j", section] if section else [])
            + [hex(a) for a in addresses],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        out: dict[int, list[str]] = {}
        current: int | None = None
        for line in proc.stdout.splitlines():
            m = re.match(r"^0x([0-9a-f]+): (.*)$", line)
            if m:
                current = int(m[1], 16)
                out[current] = [m[2]]
            elif current is not None and line.strip().startswith("(inlined by)"):
                out[current].append(line.strip())
        located = {}
        for addr, lines in out.items():
            places = [p for p in (_place(x, self.roots) for x in lines) if p]
            if places:
                located[addr] = places[0] + (
                    f" (inlined into {', '.join(places[1:])})" if len(places) > 1 else ""
                )
        return located

    def decode(self, text: str) -> tuple[str, list[dict[str, str]]]:
        """The report with file:line appended to each frame it could decode, and the frames."""
        frames = [f for f in parse_frames(text) if f.module in self.objects]
        lines = text.splitlines()
        decoded: list[dict[str, str]] = []
        by_object: dict[tuple[str | None, str | None], list[tuple[Frame, int]]] = {}
        for frame in frames:
            found = self.address(frame)
            if found is not None:
                section, addr = found
                by_object.setdefault((frame.module, section), []).append((frame, addr))
        for (module, section), items in by_object.items():
            places = self.locate(module, sorted({a for _f, a in items}), section)
            for frame, addr in items:
                place = places.get(addr)
                if not place:
                    continue
                lines[frame.line] = f"{lines[frame.line]} {place}"
                decoded.append(
                    {
                        "line": str(frame.line),
                        "function": frame.func,
                        "module": module or "vmlinux",
                        "location": place,
                    }
                )
        decoded.sort(key=lambda d: int(d["line"]))
        return "\n".join(lines), decoded


def relocatable_code_symbols(obj: Path) -> dict[str, list[Symbol]] | None:
    """name -> symbols in executable sections (nm's t/T/w/W), each with its section, of a
    relocatable ELF object (a .ko); None for any other file (vmlinux, not ELF)."""
    try:
        with obj.open("rb") as fh:
            elf = ELFFile(fh)
            if elf["e_type"] != "ET_REL":
                return None
            table: dict[str, list[Symbol]] = {}
            symtab = elf.get_section_by_name(".symtab")
            symbols = symtab.iter_symbols() if isinstance(symtab, SymbolTableSection) else ()
            for sym in symbols:
                shndx = sym["st_shndx"]  # an int, or SHN_UNDEF, SHN_ABS, SHN_COMMON
                if not sym.name or not isinstance(shndx, int):
                    continue
                if sym["st_info"]["type"] in ("STT_SECTION", "STT_FILE"):
                    continue
                section = elf.get_section(shndx)
                if section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR:
                    symbol = Symbol(sym["st_value"], sym["st_size"], section.name)
                    table.setdefault(sym.name, []).append(symbol)
            return table
    except ELFError:
        return None


def _place(addr2line_line: str, roots: tuple[tuple[str, str], ...] = ()) -> str | None:
    m = re.search(r" at (\S+):(\d+)", addr2line_line)
    if not m or m[1] == "??":
        return None
    return f"{shorten(m[1], roots)}:{m[2]}"


def has_debug_info(obj: Path) -> bool:
    """True when the ELF file has DWARF line tables (what addr2line needs)."""
    proc = subprocess.run(
        ["readelf", "-S", "--wide", str(obj)], capture_output=True, text=True, check=False
    )
    return " .debug_line " in proc.stdout


def for_kernel(kernel: Kernel, module_ko: Path | None) -> Symbolizer:
    """vmlinux of the kernel's build tree when it has debug info, and multimap."""
    objects: dict[str | None, Path] = {}
    roots: list[Path] = []
    if kernel.kdir is not None:
        vmlinux = kernel.kdir / "vmlinux"
        if vmlinux.exists() and has_debug_info(vmlinux):
            objects[None] = vmlinux
        source = kernel.kdir / "source"  # O= builds point at their source tree
        roots += [source if source.exists() else kernel.kdir]
    if module_ko is not None:
        objects["multimap"] = module_ko
    return Symbolizer(objects, get_profile(kernel.arch).cross_compile, tuple(roots))


def decode_reports(
    reports: list[Report], kernel: Kernel, modules: dict[str, Path] | None = None
) -> list[dict[str, Any]]:
    """Each report as a dict, with its stack decoded to file:line where the objects allow:
    vmlinux with debug info, multimap, and modules (name -> .ko: a scenario's own)."""
    if not reports:
        return []
    ko = None
    if kernel.kdir is not None:
        with contextlib.suppress(LabError):
            ko = build_module(kernel, log=quiet).ko
    symbolizer = for_kernel(kernel, ko)
    for name, path in (modules or {}).items():
        symbolizer.objects[name] = path
    out = []
    for r in reports:
        d = r.as_dict()
        try:
            d["decoded"], d["frames"] = symbolizer.decode(r.text)
        except (OSError, subprocess.SubprocessError) as exc:
            d["decoded"], d["frames"] = r.text, []
            d["decode_error"] = str(exc)
        out.append(d)
    return out
