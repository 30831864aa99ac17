"""`make module`'s promises: multimap builds warning-free with W=1 for both arches (native and
cross) against the lab's kernels, and checkpatch --strict is clean."""

from __future__ import annotations

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
