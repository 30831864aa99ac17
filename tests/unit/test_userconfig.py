"""A user's .config: which of its options did not survive, and why (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.kernel.spec import KernelSpec
from lab.kernel.userconfig import not_surviving, parse_config, user_fragments
from lab.profiles import get_profile

USER = """CONFIG_KASAN=y
CONFIG_KASAN_INLINE=y
# CONFIG_VIRTIO_NET is not set
CONFIG_NOT_IN_THIS_TREE=y
CONFIG_HZ=250
# CONFIG_DEBUG_VM is not set
"""
FINAL = """CONFIG_KASAN=y
CONFIG_VIRTIO_NET=y
CONFIG_HZ=100
"""


def test_parse_config_reads_values_and_not_set() -> None:
    assert parse_config(USER)["CONFIG_VIRTIO_NET"] == "n"
    assert parse_config(USER)["CONFIG_HZ"] == "250"


def test_every_lost_option_is_named_with_the_reason() -> None:
    lines = not_surviving(USER, FINAL, {"CONFIG_VIRTIO_NET": "y"})
    text = "\n".join(lines)
    assert len(lines) == 4, text
    assert "CONFIG_VIRTIO_NET=not set -> y: the lab needs it to boot" in text
    assert "CONFIG_KASAN_INLINE=y -> absent" in text
    assert "CONFIG_NOT_IN_THIS_TREE=y -> absent" in text
    assert "CONFIG_HZ=250 -> 100: olddefconfig changed it" in text
    assert "CONFIG_KASAN=" not in text  # survived
    assert "CONFIG_DEBUG_VM" not in text  # 'is not set' and absent are the same


def test_user_fragments_hold_the_boot_essentials() -> None:
    wanted: dict[str, str] = {}
    for f in user_fragments(get_profile("x86_64")):
        wanted |= parse_config(f.read_text())
    for option in ("CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_NET", "CONFIG_NET_9P_VIRTIO", "CONFIG_PVH"):
        assert wanted[option] == "y"
    assert wanted["CONFIG_DEVTMPFS"] == "y" and wanted["CONFIG_SERIAL_8250_CONSOLE"] == "y"


def test_kernel_spec_carries_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "my.config"
    cfg.write_text("CONFIG_X=y\n")
    spec = KernelSpec(source=tmp_path, config=cfg)
    assert KernelSpec.from_dict(spec.as_dict()) == spec and spec.chosen
    with pytest.raises(LabError, match="exclude"):
        KernelSpec(lab="kasan", config=cfg)
    with pytest.raises(LabError, match="no such file"):
        KernelSpec(config=tmp_path / "missing")
