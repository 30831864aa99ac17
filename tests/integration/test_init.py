"""The guest's /init (rootfs/init.c) on initramfs variants the lab does not build itself: a
compressed boot module (a kernel built with CONFIG_MODULE_COMPRESS_*), a broken module list.
Each variant is the lab's own initramfs with a second cpio archive appended, whose files replace
the first one's (the kernel unpacks them in order)."""

from __future__ import annotations

import dataclasses
import io
import lzma
from pathlib import Path

import pytest

from lab.cpio import Archive, read
from lab.errors import BootError
from lab.log import quiet
from lab.rootfs import Initramfs
from lab.session import prepare
from lab.vm import VM, VMOptions

ARCH = "arm64"  # the faster TCG boot; /init is the same program on both arches


def _boot_modules(initramfs: Initramfs) -> tuple[dict[str, tuple[int, bytes]], list[list[str]]]:
    """The initramfs's files and the [stage, path] lines of its boot-module list."""
    files = read(initramfs.path.read_bytes())
    listing = files["etc/remaplab/boot-modules"][1].decode()
    return files, [line.split() for line in listing.splitlines() if line.strip()]


def _variant(initramfs: Initramfs, arc: Archive, folder: Path) -> Initramfs:
    out = io.BytesIO()
    arc.write(out)
    path = folder / "initramfs.cpio"
    path.write_bytes(initramfs.path.read_bytes() + out.getvalue())
    return dataclasses.replace(initramfs, path=path, key=f"{initramfs.key}-test")


def test_a_compressed_boot_module_loads(tmp_path: Path) -> None:
    """virtio_net.ko.xz instead of virtio_net.ko (xz with CRC32, as kmod's modules_install makes
    it): Debian's kernel cannot decompress modules itself (no CONFIG_MODULE_DECOMPRESS), so
    /init hands it to busybox insmod, and the guest comes up with it loaded."""
    kernel, initramfs = prepare(ARCH, log=quiet)
    files, lines = _boot_modules(initramfs)
    net = next(p for _, p in lines if p.endswith("/virtio_net.ko"))
    where = f"lib/modules/{kernel.release}"
    plain = files[f"{where}/{net}"][1]
    arc = Archive()
    arc.file(f"{where}/{net}.xz", lzma.compress(plain, check=lzma.CHECK_CRC32))
    listing = "".join(f"{s} {p}.xz\n" if p == net else f"{s} {p}\n" for s, p in lines)
    arc.file("etc/remaplab/boot-modules", listing.encode())
    variant = _variant(initramfs, arc, tmp_path)
    with VM(kernel, variant, VMOptions(arch=ARCH), quiet) as vm:
        assert f"{net}.xz" in vm.run("cat /etc/remaplab/boot-modules").stdout
        assert "virtio_net " in vm.run("lsmod").stdout


@pytest.mark.parametrize(
    ("listing", "said"),
    [
        ("0 kernel/a.ko\nnonsense\n", '/etc/remaplab/boot-modules:2: not "STAGE PATH": nonsense'),
        ("0 kernel/a.ko extra\n", '/etc/remaplab/boot-modules:1: not "STAGE PATH"'),
        ("0 kernel/nowhere/missing.ko\n", "insmod kernel/nowhere/missing.ko: No such file"),
    ],
)
def test_a_broken_boot_module_list_fails_the_boot_naming_the_line(
    tmp_path: Path, listing: str, said: str
) -> None:
    """/init refuses a list it cannot read (the line named) and a module that is not there,
    with one line on the console the host reports at once: no guest that never answers."""
    kernel, initramfs = prepare(ARCH, log=quiet)
    arc = Archive()
    arc.file("etc/remaplab/boot-modules", listing.encode())
    variant = _variant(initramfs, arc, tmp_path)
    vm = VM(kernel, variant, VMOptions(arch=ARCH, boot_timeout=60), quiet)
    with pytest.raises(BootError) as exc:
        vm.start()
    vm.stop()
    assert f"{ARCH} guest init failed: {said}" in str(exc.value), str(exc.value)
    assert "timed out" not in str(exc.value)
