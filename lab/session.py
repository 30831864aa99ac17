"""Putting the pieces together: kernel + initramfs -> a running VM."""

from __future__ import annotations

from pathlib import Path

from lab.build import guest_extras
from lab.kernel import Kernel, resolve_kernel
from lab.log import Log, stderr_log
from lab.profiles import get_profile
from lab.rootfs import Extra, Initramfs, build_initramfs
from lab.vm import VM, VMOptions


def prepare(
    arch: str,
    kernel_image: Path | None = None,
    kdir: Path | None = None,
    extras: tuple[Extra, ...] = (),
    log: Log = stderr_log,
    with_lab_code: bool = True,
    lab_kernel: str | None = None,
) -> tuple[Kernel, Initramfs]:
    """Kernel + initramfs for arch; with_lab_code adds multimap and the guest tools."""
    get_profile(arch)  # unknown arch: fail before any download
    kernel = resolve_kernel(arch, kernel_image, kdir, log, lab=lab_kernel)
    if with_lab_code:
        extras = (*guest_extras(kernel, log), *extras)
    return kernel, build_initramfs(kernel, extras, log)


def make_vm(kernel: Kernel, initramfs: Initramfs, options: VMOptions, log: Log = stderr_log) -> VM:
    return VM(kernel, initramfs, options, log)
