"""The guest initramfs: busybox, dropbear with its libraries, the boot modules, the lab's keys and
the start-up scripts from rootfs/.  Built deterministically and cached by content."""

from __future__ import annotations

import re
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lab import apt
from lab.cache import Entry, hash_strings, hash_tree
from lab.cc import FLAGS as CC_FLAGS
from lab.cc import compile_static, compiler, compiler_version
from lab.cpio import Archive
from lab.elfdeps import closure, resolve_in
from lab.errors import LabError
from lab.hosttools import require
from lab.kernel import Kernel
from lab.keys import LabKeys, lab_keys
from lab.log import Log, stderr_log
from lab.paths import ROOTFS_SRC, cache_dir
from lab.profiles import Profile, get_profile

BUILDER_VERSION = "4"
# Metadata files from lib/modules/<release> that the guest's modprobe needs.
MODULE_METADATA = (
    "modules.dep",
    "modules.alias",
    "modules.builtin",
    "modules.softdep",
)  # not modules.order: kmod's depmod reads it, the guest's busybox modprobe does not


@dataclass(frozen=True)
class Extra:
    """A file added to the initramfs by a later build step (e.g. the module, guest tools)."""

    guest_path: str  # "{release}" is replaced by the kernel release
    source: Path | None = None  # None for a link
    mode: int = 0o644
    module_depends: tuple[str, ...] | None = None  # set for a kernel module: its dependencies
    link: str = ""  # a symbolic link to this instead of a file
    # "debug" or "all": copied through strip --strip-debug (a module: the loader needs its
    # symbols) or --strip-all (a program); the initramfs is unpacked at every boot
    strip: Literal["", "debug", "all"] = ""

    def data(self, profile: Profile) -> bytes:
        """The file's bytes in the guest."""
        assert self.source is not None, self.guest_path
        if not self.strip:
            return self.source.read_bytes()
        with tempfile.TemporaryDirectory(prefix="remaplab-strip-") as tmp:
            out = Path(tmp) / self.source.name
            argv = [_strip(profile), f"--strip-{self.strip}", "-o", str(out), str(self.source)]
            try:
                res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            except subprocess.TimeoutExpired as exc:
                raise LabError(f"strip {self.source}: no result within 120 s") from exc
            if res.returncode != 0:
                raise LabError(f"strip {self.source}: {res.stderr.strip()[-300:]}")
            return out.read_bytes()


def _strip(profile: Profile) -> str:
    return require(f"{profile.cross_compile}strip")


@dataclass(frozen=True)
class Initramfs:
    path: Path
    key: str
    keys: LabKeys
    has_module_share: bool
    extras: tuple[Extra, ...] = field(default_factory=tuple)


def _package_config() -> tuple[list[str], list[str]]:
    data = tomllib.loads((ROOTFS_SRC / "packages.toml").read_text())
    return list(data["packages"]), list(data["programs"])


def _versions(packages: list[str], darch: str) -> list[str]:
    found = apt.versions_of([apt.qualified(pkg, darch) for pkg in packages])
    return [f"{pkg}={found[apt.qualified(pkg, darch)]}" for pkg in packages]


def userland(profile: Profile, log: Log = stderr_log) -> Path:
    """Extracted Debian userland packages for the target arch, keyed by their versions."""
    packages, _programs = _package_config()
    pinned = _versions(packages, profile.debian_arch)
    key = f"{profile.debian_arch}-{hash_strings(pinned)}"
    pairs = [tuple(p.split("=", 1)) for p in pinned]

    def build(tmp: Path) -> list[str]:
        log(f"downloading the guest userland for {profile.debian_arch}: {', '.join(packages)}")
        debs = apt.download(
            [f"{apt.qualified(name, profile.debian_arch)}={ver}" for name, ver in pairs],
            cache_dir() / "debs",
        )
        for deb in debs:
            apt.extract(deb, tmp / "root")
        (tmp / "versions.txt").write_text("\n".join(pinned) + "\n")
        return ["versions.txt"]

    return Entry("userland", key).ensure(build, log) / "root"


def module_deps(modules_dir: Path) -> dict[str, list[str]]:
    """modules.dep as path -> the paths it needs (depmod lists them all, transitively)."""
    deps: dict[str, list[str]] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        if ":" in line:
            mod, rest = line.split(":", 1)
            deps[mod] = rest.split()
    return deps


def boot_module_order(modules_dir: Path, names: tuple[str, ...]) -> list[str]:
    """Relative .ko paths for names and their dependencies, dependencies first.
    Names that are built in (or absent from modules.dep) are skipped."""
    deps = module_deps(modules_dir)
    by_name = {module_name(mod): mod for mod in deps}
    order: list[str] = []

    def visit(mod: str, stack: tuple[str, ...]) -> None:
        if mod in order:
            return
        if mod in stack:
            raise LabError(f"module dependency cycle through {mod}")
        for dep in deps.get(mod, []):
            visit(dep, (*stack, mod))
        order.append(mod)

    for name in names:
        wanted = by_name.get(name.replace("-", "_"))
        if wanted is not None:
            visit(wanted, ())
    return order


def boot_module_levels(modules_dir: Path, order: list[str]) -> list[list[str]]:
    """order (boot_module_order's) in stages: a module's stage comes after the stages of every
    module it needs, so the modules of one stage load at once (the guest's /init loads each
    stage's modules in parallel and waits for them: the guest has two CPUs)."""
    deps = module_deps(modules_dir)
    level: dict[str, int] = {}
    for mod in order:  # dependencies first: every needed module already has its stage
        level[mod] = 1 + max((level[d] for d in deps.get(mod, []) if d in level), default=-1)
    stages: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for mod in order:
        stages[level[mod]].append(mod)
    return stages


def module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return re.sub(r"\.ko(\.(xz|gz|zst))?$", "", base).replace("-", "_")


def _extra_module_lines(kernel: Kernel, extras: tuple[Extra, ...]) -> str:
    """modules.dep lines for modules added to the initramfs, so `modprobe NAME` finds them."""
    by_name: dict[str, str] = {}
    if kernel.modules_dir is not None and (kernel.modules_dir / "modules.dep").exists():
        by_name = {module_name(mod): mod for mod in module_deps(kernel.modules_dir)}
    lines = []
    prefix = "lib/modules/{release}/"
    for extra in extras:
        if extra.module_depends is None:
            continue
        rel = extra.guest_path.removeprefix(prefix)
        missing = [d for d in extra.module_depends if module_name(d) not in by_name]
        if missing:
            raise LabError(f"{rel} depends on modules the kernel lacks: {', '.join(missing)}")
        deps = [by_name[module_name(d)] for d in extra.module_depends]
        lines.append(f"{rel}: {' '.join(deps)}".rstrip() + "\n")
    return "".join(lines)


# The guest's /init (rootfs/init.c), static: one process does the start-up the busybox shell
# script it replaced did with a process per step.  Warnings are errors, as for the tools.
INIT_SRC = ROOTFS_SRC / "init.c"
INIT_FLAGS = ("-Wextra", "-Werror", "-s")


def build_init(arch: str, log: Log = stderr_log) -> Path:
    """The guest's /init for arch (compiled, cached by content)."""
    return compile_static(arch, INIT_SRC, INIT_FLAGS, log)


def _add_userland(
    arc: Archive, profile: Profile, user: Path, programs: list[str], keys: LabKeys, init: Path
) -> None:
    """Directories, busybox, dropbear and their libraries, /init and inittab, the lab's keys."""
    for d in (
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "etc/dropbear",
        "var/log",
        "sbin",
        "usr/bin",
        "usr/sbin",
    ):
        arc.dir(d)
    arc.dir("root", 0o700)
    arc.dir("root/.ssh", 0o700)
    first: dict[Path, str] = {}  # a file under two names (ld.so) is stored once, linked once
    for prog in programs:
        src = resolve_in(user, prog)
        if not src.is_file():
            raise LabError(f"{prog} missing from the {profile.debian_arch} userland packages")
        arc.file(prog, src.read_bytes(), 0o755)
        if prog != "bin/busybox":
            for guest, lib in closure(user, src, profile.triplet).items():
                if lib in first and first[lib] != guest:
                    arc.symlink(guest, "/" + first[lib])
                else:
                    first[lib] = guest
                    arc.file(guest, lib.read_bytes(), 0o755)
    arc.file("init", init.read_bytes(), 0o755)
    arc.symlink("bin/sh", "busybox")
    arc.symlink("sbin/init", "/bin/busybox")
    for name in ("passwd", "group", "shells", "profile", "inittab", "fstab"):
        arc.file(f"etc/{name}", (ROOTFS_SRC / "etc" / name).read_bytes())
    arc.file("root/.ssh/authorized_keys", (keys.client_pub + "\n").encode(), 0o600)
    arc.file("etc/dropbear/dropbear_ed25519_host_key", keys.host_key.read_bytes(), 0o600)


def _add_modules(
    arc: Archive, kernel: Kernel, extras: tuple[Extra, ...], boot_mods: list[str]
) -> None:
    """The kernel's module metadata and boot modules, and the extras (multimap, tools)."""
    mods = f"lib/modules/{kernel.release}"
    extra_deps = _extra_module_lines(kernel, extras)
    if kernel.modules_dir is not None:
        for meta in MODULE_METADATA:
            src = kernel.modules_dir / meta
            if src.exists():
                data = src.read_bytes()
                if meta == "modules.dep":
                    data += extra_deps.encode()
                arc.file(f"{mods}/{meta}", data)
        for ko in boot_mods:
            arc.file(f"{mods}/{ko}", (kernel.modules_dir / ko).read_bytes())
        stages = boot_module_levels(kernel.modules_dir, boot_mods)
        listing = "".join(f"{n} {ko}\n" for n, stage in enumerate(stages) for ko in stage)
        arc.file("etc/remaplab/boot-modules", listing.encode())
        arc.file("etc/remaplab/modules-share", b"modules\n")
    if kernel.modules_dir is None and extra_deps:
        arc.file(f"{mods}/modules.dep", extra_deps.encode())
    profile = get_profile(kernel.arch)
    for extra in extras:
        guest = extra.guest_path.format(release=kernel.release)
        if extra.link:
            arc.symlink(guest, extra.link)
        else:
            arc.file(guest, extra.data(profile), extra.mode)


def build_initramfs(
    kernel: Kernel, extras: tuple[Extra, ...] = (), log: Log = stderr_log
) -> Initramfs:
    profile = get_profile(kernel.arch)
    keys = lab_keys()
    user = userland(profile, log)
    _packages, programs = _package_config()
    boot_mods: list[str] = []
    if kernel.modules_dir is not None:
        boot_mods = boot_module_order(kernel.modules_dir, profile.boot_modules)
    else:  # said before the boot that fails with "no eth0" when they are modules
        log(
            f"{kernel.identity} comes without its modules (no --kdir, or no modules in it): the "
            "guest comes up only if virtio-pci and virtio-net are built in (9p too for --share)"
        )
    parts: list[str | bytes] = [
        BUILDER_VERSION,
        kernel.key,
        user.parent.name,
        hash_tree(ROOTFS_SRC),
        compiler_version(compiler(kernel.arch)),  # /init's compiler and flags
        *CC_FLAGS,
        *INIT_FLAGS,
        keys.client_pub,
        keys.host_pub,
        keys.host_key.read_bytes(),
        *boot_mods,
    ]
    for extra in extras:
        content = extra.source.read_bytes() if extra.source is not None else b""
        parts += [extra.guest_path, oct(extra.mode), content, extra.link, extra.strip]
        parts += [compiler_version(_strip(profile))] if extra.strip else []  # its output
        parts += list(extra.module_depends or ())
    key = f"{kernel.arch}-{hash_strings(parts)}"

    def build(tmp: Path) -> list[str]:
        log(f"building the {kernel.arch} initramfs")
        arc = Archive()
        _add_userland(arc, profile, user, programs, keys, build_init(kernel.arch, log))
        _add_modules(arc, kernel, extras, boot_mods)
        with (tmp / "initramfs.cpio").open("wb") as out:
            arc.write(out)
        return ["initramfs.cpio"]

    path = Entry("initramfs", key).ensure(build, log) / "initramfs.cpio"
    return Initramfs(
        path=path,
        key=key,
        keys=keys,
        has_module_share=kernel.modules_dir is not None,
        extras=extras,
    )
