"""reproduce --module-param MOD.NAME=VALUE: checked at once, given to the right module."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.reproduce.session import Request
from lab.usermodules import insmod_params

KOS = [Path("/b/vmrmap.ko"), Path("/b/my-drv.ko")]


def test_params_go_to_their_module_by_the_kernels_name_rules() -> None:
    got = insmod_params(("vmrmap.bug=1", "my_drv.npages=16", "vmrmap.mode=fault"), KOS)
    assert got == {"vmrmap": ("bug=1", "mode=fault"), "my-drv": ("npages=16",)}


def test_a_param_for_no_module_names_the_built_ones() -> None:
    with pytest.raises(LabError, match=r"no module 'vmrmapp' \(built: my-drv, vmrmap\)"):
        insmod_params(("vmrmapp.bug=1",), KOS)
    with pytest.raises(LabError, match=r"built: none: no --module"):
        insmod_params(("vmrmap.bug=1",), [])


@pytest.mark.parametrize("bad", ["bug=1", "vmrmap.bug", "vmrmap.bug=1 2", "vmrmap.1x=2", "m.b='x'"])
def test_a_malformed_param_is_refused_before_anything_runs(tmp_path: Path, bad: str) -> None:
    src = tmp_path / "r.c"
    src.write_text("int main(void) { return 0; }\n")
    (tmp_path / "Kbuild").write_text("obj-m += m.o\n")
    with pytest.raises(LabError, match=r"want MOD\.NAME=VALUE"):
        Request(arch="x86_64", source=src, modules=(tmp_path,), module_params=(bad,)).check()


def test_a_param_without_any_module_is_refused_at_once(tmp_path: Path) -> None:
    src = tmp_path / "r.c"
    src.write_text("int main(void) { return 0; }\n")
    with pytest.raises(LabError, match=r"no --module to give it to"):
        Request(arch="x86_64", source=src, module_params=("vmrmap.bug=1",)).check()
