"""Frames in a module's __init / __exit functions (.init.text, .exit.text) and other code
sections decode to their own lines: in a relocatable object (a .ko) every section starts at 0,
so a symbol's value counts from its own section and addr2line must be told which (-j).  Real
objects built by the host's gcc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.symbolize import Symbolizer, relocatable_code_symbols

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("addr2line") is None,
    reason="host gcc and binutils needed",
)

# After -O2 each function starts with the code of its marked line (offset 0 decodes to it); the
# .text function comes first and is the largest, so an address read in the wrong section would
# land in it.
SOURCE = """\
int in_text(int x, int y)
{
\treturn x * y * 7 + (x ^ y) * 3 + (x | 12345) - (y & 99) + x / (y | 1); /* TEXT */
}

__attribute__((section(".init.text"))) int in_init(int x)
{
\treturn x * 3 + 1; /* INIT */
}

__attribute__((section(".exit.text"))) int in_exit(int x)
{
\treturn x * 5 + 2; /* EXIT */
}

__attribute__((section(".text.unlikely"))) int in_unlikely(int x)
{
\treturn x * 9 + 4; /* UNLIKELY */
}
"""


def line_of(marker: str) -> int:
    return next(n for n, text in enumerate(SOURCE.splitlines(), 1) if f"/* {marker} */" in text)


def compile_c(tmp_path: Path, relocatable: bool = True) -> Path:
    """demo.o (gcc -c, as a .ko is relocatable), or demo: linked at absolute addresses (as
    vmlinux is), no C library."""
    src = tmp_path / "demo.c"
    src.write_text(SOURCE)
    out = tmp_path / ("demo.o" if relocatable else "demo")
    flags = ["-c"] if relocatable else ["-no-pie", "-nostdlib", "-Wl,-e,in_text"]
    subprocess.run(["gcc", "-g", "-O2", *flags, "-o", str(out), str(src)], check=True)
    return out


def frames(sizes: dict[str, int], module: str | None) -> str:
    """A call trace through every function: return addresses (offset 1: the first instruction)."""
    tag = f" [{module}]" if module else ""
    return "\n".join(f" {name}+0x1/0x{size:x}{tag}" for name, size in sizes.items())


EXPECTED = {
    "in_text": ".text",
    "in_init": ".init.text",
    "in_exit": ".exit.text",
    "in_unlikely": ".text.unlikely",
}
MARKERS = {"in_text": "TEXT", "in_init": "INIT", "in_exit": "EXIT", "in_unlikely": "UNLIKELY"}


def test_symbols_carry_their_sections(tmp_path: Path) -> None:
    table = relocatable_code_symbols(compile_c(tmp_path))
    assert table is not None
    assert {name: table[name][0].section for name in EXPECTED} == EXPECTED
    assert all(table[name][0].value == 0 for name in EXPECTED)  # each first in its section
    assert (
        relocatable_code_symbols(compile_c(tmp_path, relocatable=False)) is None
    )  # linked: nm's way


def test_module_frames_decode_in_their_sections(tmp_path: Path) -> None:
    obj = compile_c(tmp_path)
    table = relocatable_code_symbols(obj)
    assert table is not None
    symbolizer = Symbolizer({"demo": obj})
    decoded, found = symbolizer.decode(frames({n: table[n][0].size for n in EXPECTED}, "demo"))
    where = {d["function"]: d["location"] for d in found}
    assert where == {name: f"{obj.parent}/demo.c:{line_of(m)}" for name, m in MARKERS.items()}
    assert f"in_exit+0x1/0x{table['in_exit'][0].size:x} [demo] {where['in_exit']}" in decoded


def test_pc_frame_in_exit_text(tmp_path: Path) -> None:
    obj = compile_c(tmp_path)
    (_text, found) = Symbolizer({"demo": obj}).decode("RIP: 0010:in_exit+0x0/0x10 [demo]")
    assert [d["location"] for d in found] == [f"{obj.parent}/demo.c:{line_of('EXIT')}"]


def test_linked_executable_as_before(tmp_path: Path) -> None:
    """vmlinux's way (absolute addresses from nm, no section): an executable with the same
    functions, its sections at their own addresses."""
    exe = compile_c(tmp_path, relocatable=False)
    out = subprocess.run(["nm", "-S", str(exe)], capture_output=True, text=True, check=True)
    sizes = {
        p[3]: int(p[1], 16) for p in (x.split() for x in out.stdout.splitlines()) if len(p) == 4
    }
    _text, found = Symbolizer({None: exe}).decode(frames({n: sizes[n] for n in EXPECTED}, None))
    where = {d["function"]: d["location"] for d in found}
    assert where == {name: f"{exe.parent}/demo.c:{line_of(m)}" for name, m in MARKERS.items()}
