import pytest

from lab.errors import LabError
from lab.profiles import get_profile, profiles


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
