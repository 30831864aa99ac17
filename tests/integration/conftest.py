"""Integration fixtures: real kernels, real initramfs, real QEMU guests (TCG on this machine)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.kernel import Kernel
from lab.rootfs import Initramfs
from lab.scenario.runner import VMPool
from lab.session import prepare
from lab.vm import VM, VMOptions

ARCHES = os.environ.get("REMAPLAB_ARCHES", "x86_64 arm64").split()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)
            # Under pytest -n a module's tests run in one worker, in order: its module-scoped
            # VMs boot once.  The plugin's scheduler does it (lab/xdist_scopes.py: a test goes
            # with its file); the mark says the same to xdist's own --dist loadgroup.
            item.add_marker(pytest.mark.xdist_group(f"integration-{item.path.stem}"))


_prepared: dict[str, tuple[Kernel, Initramfs]] = {}


def prepared(arch: str) -> tuple[Kernel, Initramfs]:
    if arch not in _prepared:
        _prepared[arch] = prepare(arch)
    return _prepared[arch]


@pytest.fixture(scope="module", params=ARCHES)
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def vm(arch: str) -> Iterator[VM]:
    kernel, initramfs = prepared(arch)
    with VM(kernel, initramfs, VMOptions(arch=arch)) as machine:
        yield machine


@pytest.fixture(scope="session")
def repo() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pool() -> Iterator[VMPool]:
    """A scenario runner's VM pool on Debian's kernel (one VM per arch, reused)."""
    p = VMPool()
    yield p
    p.close()
