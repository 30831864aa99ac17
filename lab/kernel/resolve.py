"""Pick the provider from the user's arguments."""

from __future__ import annotations

from pathlib import Path

from lab.errors import LabError
from lab.kernel.base import Kernel
from lab.kernel.byo import path_kernel
from lab.kernel.debian import debian_kernel
from lab.kernel.labbuild import lab_kernel
from lab.log import Log, stderr_log
from lab.profiles import get_profile


def resolve_kernel(
    arch: str,
    image: Path | None = None,
    kdir: Path | None = None,
    log: Log = stderr_log,
    lab: str | None = None,
) -> Kernel:
    """--kernel/--kdir (bring your own), lab (the lab-built kernel, profile lab or kasan), or the
    Debian kernel."""
    profile = get_profile(arch)
    if lab is not None:
        if image is not None or kdir is not None:
            raise LabError("--lab-kernel and --kernel/--kdir exclude each other")
        return lab_kernel(profile, lab, log=log)
    if image is None and kdir is not None:
        raise LabError("--kdir needs --kernel IMAGE too (bring-your-own kernel)")
    if image is not None:
        return path_kernel(profile, image, kdir, log)
    return debian_kernel(profile, log)
