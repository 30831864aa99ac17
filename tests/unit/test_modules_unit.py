"""A scenario module's parameters: what a built .ko declares (its .modinfo) and the kernel's
words for one it does not have (kernel/params.c)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.usermodules import declared_params, ignored_params, ignored_text, load_script

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
    # As a Debian 6.1 guest logged it for `insmod faultmap.ko npage=8`, beside another
    # module's line (a dependency modprobe loaded, or a boot parameter) that is not ours
    out = (
        "[   41.118800] remaplab: module load 0a1b2c3d4e5f\n"
        "[   41.118812] faultmap: unknown parameter 'npage' ignored\n"
        "[   41.118813] other_mod: unknown parameter 'x' ignored\n"
    )
    assert ignored_params(out, ["faultmap"]) == ["npage"]
    assert ignored_params(out, ["other-mod"]) == ["x"]  # '-' and '_' alike, as the kernel
    assert ignored_params(out, ["nothing"]) == []
    assert ignored_text("module drv", ["npage"], [ko]) == (
        "module drv has no parameter 'npage' (the kernel loaded it and ignored it; "
        "its parameters: bug, npages)"
    )
    assert ignored_text("module comedi_test", ["x"], []) == (
        "module comedi_test has no parameter 'x' (the kernel loaded it and ignored it)"
    )


def test_the_load_script_reads_the_log_from_its_own_mark_in_a_real_shell(tmp_path: Path) -> None:
    """load_script in sh with dmesg standing in (a full ring buffer: the count of its lines no
    longer grows, the mark still says where the load began); the command's status is kept."""
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "kmsg"
    log.write_text("".join(f"old line {i}\nold: unknown parameter 'y' ignored\n" for i in range(3)))
    (fake / "dmesg").write_text(f"#!/bin/sh\ncat {log}\n")
    (fake / "dmesg").chmod(0o755)
    script = load_script(f"echo \"drv: unknown parameter 'z' ignored\" >> {log}; false")
    script = script.replace("> /dev/kmsg", f">> {log}").replace("echo '<6>", "echo '")
    res = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env={"PATH": f"{fake}:/usr/bin:/bin"}
    )
    assert res.returncode == 1  # false's
    assert ignored_params(res.stdout, ["drv"]) == ["z"]
    assert "'y'" not in res.stdout  # before the mark
