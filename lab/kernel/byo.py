"""The ``path`` provider: bring your own kernel (``--kernel IMAGE --kdir BUILD_DIR``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lab.cache import Entry, hash_strings, sha256_file
from lab.errors import LabError
from lab.kernel.base import Kernel
from lab.kernel.imageformat import WANTED, check_image
from lab.kernel.pvh import has_pvh_note, is_elf
from lab.log import Log, stderr_log
from lab.profiles import Profile


def _readable(path: Path, what: str) -> Path:
    path = path.expanduser().resolve()
    if not path.exists():
        raise LabError(f"{what} {path} does not exist")
    if not os.access(path, os.R_OK):
        raise LabError(f"{what} {path} is not readable")
    return path


def _release(kdir: Path | None, image: Path) -> str:
    if kdir is not None:
        rel = kdir / "include/config/kernel.release"
        if rel.exists():
            return rel.read_text().strip()
    raise LabError(
        f"cannot tell the release of {image}: pass --kdir with a built tree "
        "(include/config/kernel.release)"
    )


def _has_kasan(kdir: Path | None) -> bool:
    """KASAN kernels do not come up through PVH (measured with 6.1: a silent triple fault
    before the first console line; the bzImage boots), so they boot the bzImage."""
    config = kdir / ".config" if kdir else None
    return bool(config and config.exists() and "\nCONFIG_KASAN=y\n" in config.read_text())


def checked_paths(image: Path, kdir: Path | None) -> tuple[Path, Path | None]:
    """--kernel IMAGE and --kdir DIR, resolved; a LabError for what cannot be them."""
    image = _readable(image, "kernel image")
    if image.is_dir():
        raise LabError(f"kernel image {image} is a directory, not a kernel file")
    if not image.is_file():  # a device (/dev/zero would be hashed without end) or a FIFO
        raise LabError(f"kernel image {image} is not a regular file")
    if kdir is not None:
        kdir = _readable(kdir, "kernel build directory")
        if not kdir.is_dir():
            raise LabError(f"kernel build directory {kdir} is not a directory")
        if not (kdir / "Makefile").exists():
            raise LabError(f"kernel build directory {kdir} has no Makefile")
    return image, kdir


def path_kernel(profile: Profile, image: Path, kdir: Path | None, log: Log = stderr_log) -> Kernel:
    image, kdir = checked_paths(image, kdir)
    kind = check_image(image, profile.arch)
    if kind == "an ELF x86_64 kernel" and not has_pvh_note(image):
        raise LabError(
            f"kernel image {image}: an ELF vmlinux without the PVH note (CONFIG_PVH=y) that "
            f"QEMU needs to boot it: pass {WANTED[profile.arch]}"
        )
    release = _release(kdir, image) if kdir else "unknown"
    # x86: boot the tree's ELF vmlinux through PVH when it has the note.
    boot = image
    tree_vmlinux = kdir / "vmlinux" if kdir else None
    if (
        profile.prefer_pvh
        and not _has_kasan(kdir)
        and not is_elf(image)
        and tree_vmlinux is not None
        and tree_vmlinux.exists()
        and has_pvh_note(tree_vmlinux)
    ):
        boot = tree_vmlinux
    config = kdir / ".config" if kdir and (kdir / ".config").exists() else None
    key = "path-" + hash_strings([sha256_file(image), release])
    modules_dir = None
    if (
        kdir is not None
        and (kdir / "modules.order").exists()
        and (kdir / "modules.order").stat().st_size
    ):
        modules_dir = _install_modules(profile, kdir, release, key, log)
    return Kernel(
        arch=profile.arch,
        release=release,
        image=boot,
        kdir=kdir,
        modules_dir=modules_dir,
        config=config,
        identity=f"path {image}",
        key=key,
    )


def _install_modules(profile: Profile, kdir: Path, release: str, key: str, log: Log) -> Path:
    def build(tmp: Path) -> list[str]:
        log(f"installing the modules of {kdir} into the cache")
        argv = [
            "make",
            "-s",
            "-C",
            str(kdir),
            f"ARCH={profile.kernel_arch}",
            f"INSTALL_MOD_PATH={tmp}",
            "INSTALL_MOD_STRIP=1",
            "modules_install",
        ]
        if profile.cross_compile:
            argv.append(f"CROSS_COMPILE={profile.cross_compile}")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            raise LabError(f"make modules_install in {kdir} failed: {proc.stderr.strip()[-400:]}")
        return [f"lib/modules/{release}/modules.dep"]

    return Entry("kernels", key + "-modules").ensure(build, log) / "lib/modules" / release
