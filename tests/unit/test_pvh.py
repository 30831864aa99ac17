import lzma
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.kernel.debian import fix_headers_makefile
from lab.kernel.pvh import ELF_MAGIC, extract_vmlinux


def test_extract_vmlinux_finds_the_xz_elf_after_decoys() -> None:
    elf = ELF_MAGIC + b"\x02\x01\x01" + bytes(200)
    decoy = lzma.compress(b"not an elf", format=lzma.FORMAT_XZ)
    blob = b"MZ setup code" + bytes(300) + decoy + b"pad" + lzma.compress(elf) + b"trailer"
    assert extract_vmlinux(blob) == elf


def test_extract_vmlinux_without_payload() -> None:
    with pytest.raises(LabError, match="no XZ-compressed ELF"):
        extract_vmlinux(b"MZ" + bytes(1000))


def test_fix_headers_makefile(tmp_path: Path) -> None:
    headers = tmp_path / "linux-headers-6.1.0-56-arm64"
    headers.mkdir()
    (headers / "Makefile").write_text(
        "include /usr/src/linux-headers-6.1.0-56-common/Makefile\noverride ARCH = arm64\n"
    )
    common = tmp_path / "linux-headers-6.1.0-56-common"
    fix_headers_makefile(headers, common)
    text = (headers / "Makefile").read_text()
    here = "$(dir $(lastword $(MAKEFILE_LIST)))"
    assert f"include {here}../linux-headers-6.1.0-56-common/Makefile" in text
    assert "override ARCH = arm64" in text
    assert "/usr/src/" not in text
