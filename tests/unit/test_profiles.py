import dataclasses
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.profiles import firmware_path, get_profile, profiles


def test_both_arches_are_profiled() -> None:
    table = profiles()
    assert set(table) == {"x86_64", "arm64"}
    assert table["x86_64"].qemu == "qemu-system-x86_64"
    assert table["arm64"].qemu == "qemu-system-aarch64"
    assert table["arm64"].cross_compile == "aarch64-linux-gnu-"
    assert table["x86_64"].cross_compile == ""


def test_arm64_avoids_slow_pointer_auth_cpu() -> None:
    # FACTS.md: -cpu max costs 8.2 s of boot under TCG, cortex-a72 2.1 s.
    assert get_profile("arm64").cpu_tcg == "cortex-a72"


def test_boot_modules_cover_network_and_9p() -> None:
    for prof in profiles().values():
        assert "virtio_net" in prof.boot_modules
        assert "9p" in prof.boot_modules


def test_unknown_arch_is_a_clear_error() -> None:
    with pytest.raises(LabError, match=r"unknown arch 'sparc'.*arm64, x86_64"):
        get_profile("sparc")


def _fake_qemu(tmp_path: Path, listing: str) -> str:
    qemu = tmp_path / "qemu-fake"
    qemu.write_text(f"#!/bin/sh\n[ \"$1 $2\" = '-L help' ] && printf '%s' '{listing}'\n")
    qemu.chmod(0o755)
    return str(qemu)


def test_firmware_is_found_where_qemu_looks_for_its_data(tmp_path: Path) -> None:
    seabios, data = tmp_path / "seabios", tmp_path / "data"
    seabios.mkdir()
    data.mkdir()
    (data / "qboot.rom").write_bytes(b"\0" * 64)
    qemu = _fake_qemu(tmp_path, f"{seabios}\n{data}\n")
    profile = dataclasses.replace(get_profile("x86_64"), qemu=qemu)
    assert profile.firmware == "qboot.rom"
    assert firmware_path(profile) == data / "qboot.rom"


def test_firmware_this_qemu_does_not_ship_falls_back_to_its_default(tmp_path: Path) -> None:
    qemu = _fake_qemu(tmp_path, f"{tmp_path}\n")
    assert firmware_path(dataclasses.replace(get_profile("x86_64"), qemu=qemu)) is None
    missing = dataclasses.replace(get_profile("x86_64"), qemu=str(tmp_path / "no-such-qemu"))
    assert firmware_path(missing) is None
    assert firmware_path(get_profile("arm64")) is None  # names none: QEMU starts the kernel


def test_firmware_beside_qemu_is_found_without_asking_it(tmp_path: Path) -> None:
    """QEMU's own data folder (../share/qemu from its binary) first: no process on the boot path."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "share" / "qemu").mkdir(parents=True)
    (tmp_path / "share" / "qemu" / "qboot.rom").write_bytes(b"\0" * 64)
    asked = tmp_path / "asked"
    qemu = tmp_path / "bin" / "qemu-fake"
    qemu.write_text(f"#!/bin/sh\ntouch {asked}\n")
    qemu.chmod(0o755)
    profile = dataclasses.replace(get_profile("x86_64"), qemu=str(qemu))
    assert firmware_path(profile) == tmp_path / "share" / "qemu" / "qboot.rom"
    assert not asked.exists()


def test_a_qemu_that_cannot_be_asked_is_asked_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "qboot.rom").write_bytes(b"\0" * 64)
    qemu = tmp_path / "qemu-fake"
    qemu.write_text("#!/nonexistent/interpreter\n")  # exec fails: OSError
    qemu.chmod(0o755)
    profile = dataclasses.replace(get_profile("x86_64"), qemu=str(qemu))
    assert firmware_path(profile) is None
    qemu.write_text(f"#!/bin/sh\nprintf '%s\\n' '{data}'\n")
    assert firmware_path(profile) == data / "qboot.rom"  # the failure was not remembered
