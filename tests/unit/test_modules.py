from pathlib import Path

import pytest

from lab.errors import LabError
from lab.rootfs import boot_module_levels, boot_module_order, module_name

DATA = Path(__file__).parent / "data"


@pytest.fixture
def moddir(tmp_path: Path) -> Path:
    # Recorded from Debian 6.1.0-56-amd64 (depmod output of the extracted package).
    (tmp_path / "modules.dep").write_text((DATA / "modules.dep.debian-6.1-amd64").read_text())
    return tmp_path


def test_dependencies_come_first(moddir: Path) -> None:
    order = boot_module_order(moddir, ("virtio_pci", "virtio_net", "9pnet_virtio", "9p"))
    names = [module_name(p) for p in order]
    for before, after in [
        ("virtio_ring", "virtio"),  # virtio.ko: virtio_ring.ko
        ("virtio", "virtio_pci"),
        ("virtio_ring", "virtio_net"),
        ("failover", "net_failover"),
        ("net_failover", "virtio_net"),
        ("9pnet", "9pnet_virtio"),
        ("netfs", "9p"),
        ("fscache", "9p"),
    ]:
        assert names.index(before) < names.index(after), (before, after)
    assert len(names) == len(set(names))
    assert "comedi" not in names
    # Every module comes after everything modules.dep says it needs, and nothing is missing.
    deps = {
        module_name(mod): [module_name(d) for d in needs.split()]
        for mod, needs in (
            line.split(":", 1) for line in (moddir / "modules.dep").read_text().splitlines()
        )
    }
    for i, name in enumerate(names):
        assert set(deps[name]) <= set(names[:i]), (name, deps[name], names[:i])


def test_builtin_or_unknown_names_are_skipped(moddir: Path) -> None:
    assert boot_module_order(moddir, ("virtio_mmio_builtin_here",)) == []


def test_cycle_is_reported(tmp_path: Path) -> None:
    (tmp_path / "modules.dep").write_text("kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n")
    with pytest.raises(LabError, match="cycle"):
        boot_module_order(tmp_path, ("a",))


def test_module_name() -> None:
    assert module_name("kernel/drivers/net/virtio_net.ko") == "virtio_net"
    assert module_name("kernel/x/foo-bar.ko.xz") == "foo_bar"


def test_boot_stages_follow_dependencies(moddir: Path) -> None:
    order = boot_module_order(moddir, ("virtio_pci", "virtio_net", "9pnet_virtio", "9p"))
    stages = boot_module_levels(moddir, order)
    assert sorted(m for stage in stages for m in stage) == sorted(order)
    stage_of = {module_name(m): n for n, stage in enumerate(stages) for m in stage}
    deps = {
        module_name(mod): [module_name(d) for d in needs.split()]
        for mod, needs in (
            line.split(":", 1) for line in (moddir / "modules.dep").read_text().splitlines()
        )
    }
    for name, n in stage_of.items():
        assert all(stage_of[d] < n for d in deps[name]), (name, deps[name], stage_of)
    # Modules with nothing to wait for share the first stage; something needs each later one.
    assert {"virtio_ring", "failover", "9pnet", "netfs"} <= {module_name(m) for m in stages[0]}
    for n, stage in enumerate(stages[1:], 1):
        for mod in stage:
            assert any(stage_of[d] == n - 1 for d in deps[module_name(mod)]), mod


def test_boot_stages_of_nothing(moddir: Path) -> None:
    assert boot_module_levels(moddir, []) == []
