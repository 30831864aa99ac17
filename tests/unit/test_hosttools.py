"""Host tools are found where Debian installs them, even off a normal user's PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import hosttools
from lab.errors import LabError


def test_sbin_tools_are_found_without_sbin_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not Path("/usr/sbin/depmod").exists() and not Path("/sbin/depmod").exists():
        pytest.skip("kmod's depmod is not installed in an sbin directory here")
    monkeypatch.setenv("PATH", str(tmp_path))  # a user's PATH without /usr/sbin
    found = hosttools.which("depmod")
    assert found is not None and found.endswith("/depmod")


def test_a_missing_tool_names_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(hosttools, "SBIN", (str(tmp_path),))
    with pytest.raises(LabError, match=r"dropbearkey not found .*Debian package dropbear-bin"):
        hosttools.require("dropbearkey")


def test_table_expands_cross_prefixes() -> None:
    tools = hosttools.table()
    assert tools["depmod"] == "kmod"
    assert tools["aarch64-linux-gnu-gcc"] == "gcc-aarch64-linux-gnu"
    assert not any("{" in name for name in tools)


def test_every_tool_package_is_installed_by_the_package_list() -> None:
    """What doctor checks, deps.sh (and doctor --install-command) installs: each tool's package
    is in host_packages.txt, or always there on Debian/Ubuntu (essential, or gcc's dependency)."""
    from lab.hosttools import packages, table

    always = {"apt", "dpkg", "perl", "binutils"}
    missing = {pkg for pkg in table().values() if pkg not in packages() and pkg not in always}
    assert not missing


def test_the_install_command() -> None:
    from lab.hosttools import install_command, packages

    amd64 = install_command("amd64")
    assert amd64.startswith("dpkg --add-architecture arm64 && apt-get update && ")
    assert amd64.endswith(" ".join(packages())) and "qemu-system-arm" in amd64
    assert "--add-architecture" not in install_command("arm64")


def test_install_command_without_dpkg_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lab.cli import main

    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["doctor", "--install-command"]) == 125
    assert "dpkg not found" in capsys.readouterr().err
