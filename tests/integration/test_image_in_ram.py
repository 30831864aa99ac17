"""An arm64 guest boots from the Image the lab put into its RAM file (lab/image_in_ram.py), at the
place QEMU itself would have loaded it; an image the lab cannot place (Image.gz, as a user may
bring it) is loaded by QEMU as before."""

from __future__ import annotations

import dataclasses
import re
import shlex
import struct
import zlib
from pathlib import Path

from lab.image_in_ram import LOAD_OFFSET
from lab.log import quiet
from lab.profiles import get_profile
from lab.scenario.load import load_file
from lab.scenario.result import Outcome
from lab.scenario.runner import VMPool, run_scenario
from lab.session import prepare
from lab.vm import VM, VMOptions

ARCH = "arm64"


def _kernel_arg(argv: list[str]) -> str:
    return argv[argv.index("-kernel") + 1]


def _iomem_span(iomem: str, name: str) -> tuple[int, int]:
    (span,) = re.findall(rf"^\s*([0-9a-f]+)-([0-9a-f]+) : {name}$", iomem, re.M)
    return int(span[0], 16), int(span[1], 16)


def test_the_guest_runs_the_image_the_lab_put_into_ram() -> None:
    kernel, initramfs = prepare(ARCH, log=quiet)
    head = kernel.image.read_bytes()[:64]
    (image_size,) = struct.unpack_from("<Q", head, 16)
    with VM(kernel, initramfs, VMOptions(arch=ARCH), quiet) as vm:
        assert vm.preload is not None and vm.preload.offset == LOAD_OFFSET
        header = vm.workdir / "kernel-header.img"
        assert _kernel_arg(vm.argv) == str(header) and header.read_bytes() == head
        assert _kernel_arg(vm.boot_argv) == str(kernel.image)  # what a bundle reruns
        said = (vm.workdir / "qemu-argv.txt").read_text()
        assert f"put {kernel.image} into the guest's RAM at byte 0x200000" in said
        assert vm.run("uname -r").stdout.strip() == kernel.release
        # The kernel's own account of where it lies: from 2 MiB into RAM to image_size on.
        iomem = vm.run("cat /proc/iomem").stdout
        base = get_profile(ARCH).ram_base + LOAD_OFFSET
        code, data = _iomem_span(iomem, "Kernel code"), _iomem_span(iomem, "Kernel data")
        assert base <= code[0] < base + (1 << 20)
        assert data[1] == base + image_size - 1


def test_an_image_gz_is_loaded_by_qemu(tmp_path: Path) -> None:
    kernel, initramfs = prepare(ARCH, log=quiet)
    gz = tmp_path / "Image.gz"
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip, fastest: QEMU unpacks any level
    gz.write_bytes(packer.compress(kernel.image.read_bytes()) + packer.flush())
    packed = dataclasses.replace(kernel, image=gz)
    with VM(packed, initramfs, VMOptions(arch=ARCH), quiet) as vm:
        assert vm.preload is None
        assert _kernel_arg(vm.argv) == _kernel_arg(vm.boot_argv) == str(gz)
        assert vm.run("uname -r").stdout.strip() == kernel.release


def test_a_failed_scenarios_bundle_boots_with_qemu_alone(pool: VMPool, tmp_path: Path) -> None:
    """The bundle's qemu-argv.txt gives QEMU the Image itself (the run's own argv, kept in the
    result folder, names the header file and says so)."""
    scenario = tmp_path / "fails.yaml"
    scenario.write_text(
        "name: fails\ndescription: fails\narches: [arm64]\nsteps:\n  - run: {command: 'false'}\n"
    )
    result = run_scenario(load_file(scenario), ARCH, pool, tmp_path)
    assert result.outcome == Outcome.FAILED, result.render()
    folder = tmp_path / f"fails-{ARCH}"
    argv = shlex.split((folder / "bundle" / "qemu-argv.txt").read_text())
    kernel, _ = prepare(ARCH, log=quiet)
    assert _kernel_arg(argv) == str(kernel.image)
    assert "with QEMU alone" in (folder / "qemu-argv.txt").read_text()
