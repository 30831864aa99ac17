"""Putting the pieces together: a KernelSpec -> kernel + initramfs, ready to boot."""

from __future__ import annotations

from lab.build import guest_extras
from lab.kernel import Kernel, KernelSpec
from lab.log import Log, stderr_log
from lab.profiles import get_profile
from lab.rootfs import Extra, Initramfs, build_initramfs


def prepare(
    arch: str,
    spec: KernelSpec | None = None,
    extras: tuple[Extra, ...] = (),
    log: Log = stderr_log,
    with_lab_code: bool = True,
) -> tuple[Kernel, Initramfs]:
    """Kernel + initramfs for arch; with_lab_code adds multimap and the guest tools."""
    get_profile(arch)  # unknown arch: fail before any download
    kernel = (spec or KernelSpec()).resolve(arch, log)
    if with_lab_code:
        extras = (*guest_extras(kernel, log), *extras)
    return kernel, build_initramfs(kernel, extras, log)
