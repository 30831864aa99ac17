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
