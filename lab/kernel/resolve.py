"""Pick the provider from the user's KernelSpec."""

from __future__ import annotations

from lab.kernel.base import Kernel
from lab.kernel.byo import path_kernel
from lab.kernel.debian import debian_kernel
from lab.kernel.labbuild import lab_kernel
from lab.kernel.spec import KernelSpec
from lab.log import Log, stderr_log
from lab.profiles import get_profile


def resolve_kernel(arch: str, spec: KernelSpec | None = None, log: Log = stderr_log) -> Kernel:
    """--kernel/--kdir (bring your own), the lab-built kernel (profile lab or kasan, from
    Debian's linux-source or spec.source), or the Debian kernel."""
    spec = spec or KernelSpec()
    profile = get_profile(arch)
    if spec.lab is not None or spec.source is not None or spec.config is not None:
        return lab_kernel(profile, spec.lab or "lab", spec.source, log=log, user_config=spec.config)
    if spec.image is not None:
        return path_kernel(profile, spec.image, spec.kdir, log)
    return debian_kernel(profile, log)
