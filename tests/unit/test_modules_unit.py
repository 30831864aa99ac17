"""A scenario module's parameters: what a built .ko declares (its .modinfo) and the kernel's
words for one it does not have (kernel/params.c)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.scenario.modules import UNKNOWN_PARAM, Prepared, _unknown_params, declared_params
from lab.scenario.schema import ModuleSpec

# As module_param(npages, uint, 0444) and MODULE_PARM_DESC put them in .modinfo.
MODINFO = r"""
__attribute__((section(".modinfo"), used)) static const char a[] = "parmtype=npages:uint";
__attribute__((section(".modinfo"), used)) static const char b[] = "parm=npages:pages (uint)";
__attribute__((section(".modinfo"), used)) static const char c[] = "parmtype=bug:bool";
__attribute__((section(".modinfo"), used)) static const char d[] = "license=GPL";
"""


@pytest.fixture
def ko(tmp_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    src = tmp_path / "mod.c"
    src.write_text(MODINFO)
    out = tmp_path / "mod.ko"
    subprocess.run(["gcc", "-c", str(src), "-o", str(out)], check=True)
    return out


def test_a_modules_declared_parameters_come_from_its_modinfo(ko: Path, tmp_path: Path) -> None:
    assert declared_params(ko) == ["bug", "npages"]
    plain = tmp_path / "plain.o"
    (tmp_path / "plain.c").write_text("int x;\n")
    subprocess.run(["gcc", "-c", str(tmp_path / "plain.c"), "-o", str(plain)], check=True)
    assert declared_params(plain) == []


def test_an_ignored_parameter_is_named_with_the_ones_there_are(ko: Path) -> None:
    # As a Debian 6.1 guest logged it for `insmod faultmap.ko npage=8`
    log = "[   41.118812] faultmap: unknown parameter 'npage' ignored\n"
    found = UNKNOWN_PARAM.findall(log)
    assert found == [("faultmap", "npage")]
    spec = ModuleSpec(source="drv", params={"npage": 8})
    text = _unknown_params(Prepared(spec, (ko,)), found)
    assert text == (
        "module drv: the kernel ignored parameter(s) 'npage': it has no such parameter "
        "(its parameters: bug, npages); check the scenario's `params`"
    )
    guest = _unknown_params(Prepared(ModuleSpec(name="comedi_test", params={"x": 1}), ()), found)
    assert guest.startswith("module comedi_test: the kernel ignored parameter(s) 'npage'")
