"""`make module`'s promises: multimap builds warning-free with W=1 for both arches (native and
cross) against the lab's kernels, and checkpatch --strict is clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.build import build_module, build_tools
from lab.checkpatch import run_checkpatch
from lab.kernel import resolve_kernel
from lab.profiles import arches


@pytest.mark.parametrize("arch", arches())
def test_module_builds_w1_clean(arch: str) -> None:
    kernel = resolve_kernel(arch)
    mod = build_module(kernel)  # raises on any warning
    info = mod.ko.read_bytes()
    assert info[:4] == b"\x7fELF"
    assert b"vermagic=" + kernel.release.encode() in info
    assert "warning" not in mod.log.read_text().lower()
    tools = build_tools(arch)
    assert set(tools) == {"multimap-ctl", "pagemap-dump", "multimap-fuzz", "remaplab-map"}


def test_checkpatch_strict_clean() -> None:
    ok, out = run_checkpatch()
    assert ok, out


def test_triage_reads_arch_and_module_name_from_the_ko(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An arm64 .ko under another file name decodes without --arch: the arch comes from the ELF
    header, the module name from .modinfo."""
    import shutil

    from lab.cli import main

    ko = tmp_path / "renamed-build.ko"
    shutil.copy(build_module(resolve_kernel("arm64")).ko, ko)
    log = tmp_path / "oops.log"
    log.write_text(
        "[   12.0] Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP\n"
        "[   12.0] pc : multimap_mmap+0x10c/0x68c [multimap]\n"
        "[   12.0] Call trace:\n"
        "[   12.0]  multimap_mmap+0x10c/0x68c [multimap]\n"
        "[   12.0] ---[ end trace 0000000000000000 ]---\n"
    )
    assert main(["triage", "-v", "--module", str(ko), str(log)]) == 0
    assert "multimap_mmap+0x10c/0x68c [multimap] module/multimap.c:" in capsys.readouterr().out


def test_tools_are_one_multicall_binary(tmp_path: Path) -> None:
    """The tools are one static binary that runs the tool its name says (a link or a copy of
    that name), or the tool named by its first argument; under another name it says what it
    runs and exits 127."""
    import shutil
    import subprocess

    from lab.build import MULTICALL, install_tools
    from lab.profiles import host_arch

    tools = build_tools(host_arch())
    (binary,) = set(tools.values())
    assert binary.name == MULTICALL
    install_tools(tools, tmp_path)
    assert (tmp_path / "pagemap-dump").readlink() == Path(MULTICALL)

    def run(*argv: str | Path) -> tuple[int, str]:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        return done.returncode, done.stderr

    code, said = run(tmp_path / "pagemap-dump")
    assert code == 2 and "usage: pagemap-dump" in said  # 2: an argument it cannot parse
    assert run(binary, "pagemap-dump") == (code, said)
    shutil.copy(binary, tmp_path / "copy")
    (tmp_path / "copy").rename(tmp_path / "remaplab-map")
    assert "usage: remaplab-map" in run(tmp_path / "remaplab-map")[1]
    code, said = run(binary)
    assert code == 127 and all(t in said for t in tools), said
    (tmp_path / "renamed").symlink_to(MULTICALL)
    assert run(tmp_path / "renamed")[0] == 127


@pytest.mark.parametrize("arch", arches())
def test_initramfs_carries_no_debug_information(arch: str, tmp_path: Path) -> None:
    """The kernel unpacks the initramfs at every boot: the tools are one stripped binary and
    links, multimap.ko has its symbols but no debug sections (the host's copy keeps them), and
    a library under two names (ld.so) is stored once."""
    import subprocess

    from lab.build import MULTICALL, TOOLS, guest_extras
    from lab.rootfs import build_initramfs

    kernel = resolve_kernel(arch)
    cpio = build_initramfs(kernel, guest_extras(kernel)).path
    subprocess.run(["cpio", "-id", "--quiet"], stdin=cpio.open("rb"), cwd=tmp_path, check=True)
    for tool in TOOLS:
        assert (tmp_path / "usr/bin" / tool).readlink() == Path(MULTICALL)
    ko = tmp_path / f"lib/modules/{kernel.release}/extra/multimap.ko"
    host_ko = build_module(kernel).ko
    assert b".debug_info" in host_ko.read_bytes() and b".debug_info" not in ko.read_bytes()
    assert b".symtab" in ko.read_bytes() and len(ko.read_bytes()) < len(host_ko.read_bytes())
    assert b".debug_info" not in (tmp_path / "usr/bin" / MULTICALL).read_bytes()
    loaders = [p for p in tmp_path.glob("lib*/**/ld-linux*") if not p.is_symlink()]
    assert len(loaders) == 1, loaders
