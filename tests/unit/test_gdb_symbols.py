"""Which file gdb gets the kernel's symbols from: the build tree's vmlinux, else the booted image
when it has a symbol table, else the image and a note saying how to get symbols."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.gdb import has_symbols, kernel_symbols
from lab.kernel import Kernel


def _kernel(image: Path, kdir: Path | None) -> Kernel:
    return Kernel("x86_64", "6.1.0", image, kdir, None, None, "debian linux-image-6.1.0", "k")


@pytest.fixture
def elf_with_symbols(tmp_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")
    src = tmp_path / "f.c"
    src.write_text("int remaplab_symbol(void) { return 1; }\n")
    obj = tmp_path / "vmlinux"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(src)], check=True)
    return obj


def test_symbols_are_told_apart(tmp_path: Path, elf_with_symbols: Path) -> None:
    stripped = tmp_path / "stripped"
    shutil.copy(elf_with_symbols, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    image = tmp_path / "Image"
    image.write_bytes(b"MZ" + b"\0" * 62 + b"ARM\x64")  # an arm64 Image's header: no ELF
    assert has_symbols(elf_with_symbols)
    assert not has_symbols(stripped) and not has_symbols(image)
    assert not has_symbols(tmp_path / "missing")


def test_the_build_tree_s_vmlinux_first_then_the_image(
    tmp_path: Path, elf_with_symbols: Path
) -> None:
    stripped = tmp_path / "boot-vmlinux"
    shutil.copy(elf_with_symbols, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    kdir = elf_with_symbols.parent
    assert kernel_symbols(_kernel(stripped, kdir)) == (elf_with_symbols, None)
    assert kernel_symbols(_kernel(elf_with_symbols, None)) == (elf_with_symbols, None)


def test_a_stripped_distribution_kernel_is_named_with_the_way_out(tmp_path: Path) -> None:
    image = tmp_path / "vmlinuz"
    image.write_bytes(b"\0" * 512)
    headers = tmp_path / "headers"  # a headers tree: no vmlinux
    headers.mkdir()
    path, note = kernel_symbols(_kernel(image, headers))
    assert path == image and note is not None
    assert "has no symbols for gdb" in note and "--lab-kernel lab" in note
