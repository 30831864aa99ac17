"""A kernel image is known by its header: what QEMU cannot boot for the guest's arch is refused
in one line naming the file and what it is, before any VM."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from lab.cli import main
from lab.errors import LabError
from lab.kernel.imageformat import check_image, identify


def _bzimage() -> bytes:
    head = bytearray(0x1000)
    head[0:2] = b"MZ"  # the EFI stub's header comes first, as in Debian's vmlinuz
    head[0x1FE:0x200] = b"\x55\xaa"
    head[0x202:0x206] = b"HdrS"
    return bytes(head)


def _arm64_image() -> bytes:
    head = bytearray(0x1000)
    head[0:2] = b"MZ"
    head[0x38:0x3C] = b"ARM\x64"
    return bytes(head)


def _elf(e_type: int, machine: int, sections: tuple[str, ...] = ()) -> bytes:
    """An ELF64 header and, with sections, a section table naming them (a vmlinux has
    .init.text; a program has none of the kernel's sections)."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    names = [".shstrtab", *sections]
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in names)
    offsets = [1 + sum(len(n) + 1 for n in names[:i]) for i in range(len(names))]
    shoff = 64 + len(strtab) + (-len(strtab) % 8)
    count = len(names) + 1 if sections else 0
    # type, machine, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum,
    # shentsize, shnum, shstrndx
    header = struct.pack(
        "<HHIQQQIHHHHHH", e_type, machine, 1, 0, 0, shoff if count else 0, 0, 64, 56, 0, 64,
        count, 1 if count else 0,
    )  # fmt: skip
    if not count:
        return ident + header + bytes(0x200)
    table = bytes(64)  # the null section
    table += struct.pack("<IIQQQQIIQQ", offsets[0], 3, 0, 0, 64, len(strtab), 0, 0, 1, 0)
    for off in offsets[1:]:  # PROGBITS, no bytes
        table += struct.pack("<IIQQQQIIQQ", off, 1, 6, 0, 0, 0, 0, 0, 16, 0)
    body = ident + header + strtab
    return body + bytes(shoff - len(body)) + table


KERNEL = (".init.text",)


IMAGES = {
    "bzimage": (_bzimage(), "a bzImage"),
    "image": (_arm64_image(), "an arm64 Image"),
    "image-gz": (gzip.compress(_arm64_image()), "a gzip arm64 Image"),
    "zboot": (b"MZ\0\0zimg" + bytes(0x300), "an EFI zboot image"),
    "vmlinux-x86": (_elf(2, 62, KERNEL), "an ELF x86_64 kernel"),
    "vmlinux-arm64": (_elf(2, 183, KERNEL), "an ELF arm64 kernel"),
    "module": (_elf(1, 62), "an ELF x86_64 module or object file (e_type 1)"),
    "program": (_elf(3, 183), "an ELF arm64 program or library (e_type 3)"),
    "riscv": (_elf(2, 243, KERNEL), "an ELF riscv kernel"),
    "static-program": (_elf(2, 62, (".text",)), "an ELF x86_64 program (e_type 2)"),
    "truncated-elf": (b"\x7fELF\x02", "a truncated ELF file"),
    "text": (b"root:x:0:0:root:/root:/bin/bash\n", "text"),
    "empty": (b"", "an empty file"),
    "gzip-text": (gzip.compress(b"hello\n" * 100), "gzip data"),
    "random": (bytes(range(256)) * 4, "binary data of no kernel format"),
}


@pytest.mark.parametrize("case", sorted(IMAGES))
def test_identify(tmp_path: Path, case: str) -> None:
    data, kind = IMAGES[case]
    path = tmp_path / case
    path.write_bytes(data)
    assert identify(path) == kind


BOOTS = {
    "x86_64": {"bzimage", "vmlinux-x86"},
    "arm64": {"image", "image-gz", "zboot", "vmlinux-arm64"},
}


@pytest.mark.parametrize("arch", sorted(BOOTS))
@pytest.mark.parametrize("case", sorted(IMAGES))
def test_only_what_qemu_boots_for_the_arch_passes(tmp_path: Path, arch: str, case: str) -> None:
    data, kind = IMAGES[case]
    path = tmp_path / case
    path.write_bytes(data)
    if case in BOOTS[arch]:
        assert check_image(path, arch) == kind
    else:
        with pytest.raises(LabError, match=f"^kernel image {path}: .*not an {arch} kernel: pass"):
            check_image(path, arch)


@pytest.mark.parametrize(
    ("arch", "case", "said"),
    [
        ("arm64", "bzimage", ": a bzImage, not an arm64 kernel: pass an Image"),
        ("x86_64", "text", ": text, not an x86_64 kernel: pass a bzImage"),
        ("x86_64", "vmlinux-x86", ": an ELF vmlinux without the PVH note (CONFIG_PVH=y)"),
    ],
)
def test_the_cli_refuses_a_wrong_kernel_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arch: str, case: str, said: str
) -> None:
    path = tmp_path / case
    path.write_bytes(IMAGES[case][0])
    assert main(["boot", "--arch", arch, "--kernel", str(path), "--", "true"]) == 125
    err = capsys.readouterr().err.strip()
    assert f"kernel image {path}{said}" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("compiler", "arch"), [("gcc", "x86_64"), ("aarch64-linux-gnu-gcc", "arm64")]
)
def test_a_relocatable_kernel_is_a_kernel_not_a_library(
    tmp_path: Path, compiler: str, arch: str
) -> None:
    """arm64 with CONFIG_RELOCATABLE (defconfig) links vmlinux -shared (ELF type 3): its kernel
    sections tell it from a shared library of the same type."""
    import shutil
    import subprocess

    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    src = tmp_path / "k.c"
    src.write_text(
        '__attribute__((section(".head.text"))) int head = 1;\nint lib(void) { return 0; }\n'
    )
    kernel, library = tmp_path / "vmlinux", tmp_path / "lib.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-nostdlib", "-o", str(kernel), str(src)], check=True
    )
    (tmp_path / "l.c").write_text("int lib(void) { return 0; }\n")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-nostdlib", "-o", str(library), str(tmp_path / "l.c")],
        check=True,
    )
    machine = {"x86_64": "x86_64", "arm64": "arm64"}[arch]
    assert identify(kernel) == f"an ELF {machine} kernel"
    assert identify(library) == f"an ELF {machine} program or library (e_type 3)"
    if arch == "arm64":
        assert check_image(kernel, arch) == "an ELF arm64 kernel"
