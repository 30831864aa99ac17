"""The default provider: the current Debian stable kernel for the target arch, fetched with
``apt-get download`` (no root, no system-wide install) and extracted into the cache."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab import apt
from lab.cache import Entry
from lab.errors import LabError
from lab.hosttools import require
from lab.kernel.base import Kernel
from lab.kernel.pvh import extract_vmlinux, has_pvh_note
from lab.log import Log, stderr_log
from lab.paths import cache_dir
from lab.profiles import Profile, host_arch

LAYOUT = "v2"  # bump when the extracted layout or its fix-ups change


def _host_debian_arch() -> str:
    return {"x86_64": "amd64", "arm64": "arm64"}.get(host_arch(), host_arch())


def fix_headers_makefile(headers: Path, common: Path) -> None:
    """Debian's per-arch headers Makefile includes the -common tree by absolute /usr/src path."""
    makefile = headers / "Makefile"
    text = makefile.read_text()
    fixed = []
    for line in text.splitlines():
        if line.startswith("include /usr/src/") and line.rstrip().endswith("-common/Makefile"):
            # Relative to this Makefile, so the cache entry can be built in a temporary
            # directory and renamed into place.
            line = f"include $(dir $(lastword $(MAKEFILE_LIST)))../{common.name}/Makefile"
        fixed.append(line)
    makefile.write_text("\n".join(fixed) + "\n")


def debian_kernel(profile: Profile, log: Log = stderr_log) -> Kernel:
    darch = profile.debian_arch
    image_pkg = apt.depends_of(f"linux-image-{darch}:{darch}", "linux-image-")
    release = image_pkg.removeprefix("linux-image-")
    version = apt.version_of(f"{image_pkg}:{darch}")
    abi = release.removesuffix(f"-{darch}")  # 6.1.0-56
    flavour_headers = f"linux-headers-{release}"
    common_headers = f"linux-headers-{abi}-common"
    series = ".".join(abi.split(".")[:2])  # 6.1
    kbuild = f"linux-kbuild-{series}"
    key = f"debian-{release}-{version}-{LAYOUT}"

    def build(tmp: Path) -> list[str]:
        debs_dir = cache_dir() / "debs"
        root = tmp / "root"
        log(f"downloading {image_pkg} {version} and its headers for {darch}")
        debs = apt.download(
            [
                f"{image_pkg}:{darch}",
                f"{flavour_headers}:{darch}",
                common_headers,  # Architecture: all
                f"{kbuild}:{_host_debian_arch()}",
            ],
            debs_dir,
        )
        for deb in debs:
            log(f"extracting {deb.name}")
            apt.extract(deb, root)
        headers = root / "usr/src" / flavour_headers
        common = root / "usr/src" / common_headers
        if not (headers / "Makefile").exists() or not common.is_dir():
            raise LabError(f"{flavour_headers}: unexpected package layout under {root}")
        fix_headers_makefile(headers, common)
        subprocess.run([require("depmod"), "-b", str(root), release], check=True, timeout=120)
        vmlinuz = root / "boot" / f"vmlinuz-{release}"
        hashed = [
            str(vmlinuz.relative_to(tmp)),
            str((headers / "Module.symvers").relative_to(tmp)),
            str((headers / "Makefile").relative_to(tmp)),
            f"root/lib/modules/{release}/modules.dep",
        ]
        if profile.prefer_pvh:
            vmlinux = tmp / "vmlinux"
            vmlinux.write_bytes(extract_vmlinux(vmlinuz.read_bytes()))
            hashed.append("vmlinux")
        return hashed

    path = Entry("kernels", key).ensure(build, log)
    root = path / "root"
    image = root / "boot" / f"vmlinuz-{release}"
    pvh = path / "vmlinux"
    if profile.prefer_pvh and pvh.exists() and has_pvh_note(pvh):
        image = pvh
    return Kernel(
        arch=profile.arch,
        release=release,
        image=image,
        kdir=root / "usr/src" / flavour_headers,
        modules_dir=root / "lib/modules" / release,
        config=root / "boot" / f"config-{release}",
        identity=f"debian {image_pkg} {version}",
        key=key,
    )
