"""Per-architecture QEMU profiles, loaded from lab/data/qemu_profiles.toml."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lab.errors import LabError


@dataclass(frozen=True)
class Profile:
    arch: str
    qemu: str
    qemu_package: str
    debian_arch: str
    kernel_arch: str
    cross_compile: str
    uname_m: str
    triplet: str
    machine: str
    firmware: str  # in QEMU's data folders (-L help), booted with -bios; "": QEMU's default
    cpu_tcg: str
    cpu_kvm: str
    console: str
    prefer_pvh: bool
    image_in_ram: bool  # the lab puts the kernel into guest RAM (lab/image_in_ram.py)
    ram_base: int
    ram_low_limit: int
    net_device: str
    fs_device: str
    extra_args: tuple[str, ...]
    boot_modules: tuple[str, ...]
    cmdline: tuple[str, ...]
    cmdline_tcg: tuple[str, ...]  # added only under TCG


@cache
def profiles() -> dict[str, Profile]:
    text = (Path(__file__).parent / "data" / "qemu_profiles.toml").read_text()
    table = tomllib.loads(text)
    out: dict[str, Profile] = {}
    for arch, row in table.items():
        row = dict(row)
        for key in ("extra_args", "boot_modules", "cmdline", "cmdline_tcg"):
            row[key] = tuple(row[key])
        out[arch] = Profile(arch=arch, **row)
    return out


def arches() -> tuple[str, ...]:
    """Every arch the lab has a QEMU profile for: the one list of arches."""
    return tuple(profiles())


def get_profile(arch: str) -> Profile:
    table = profiles()
    if arch not in table:
        raise LabError(f"unknown arch {arch!r}: choose one of {', '.join(sorted(table))}")
    return table[arch]


def host_arch() -> str:
    import platform

    machine = platform.machine()
    return {"aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


_FIRMWARE: dict[Profile, Path | None] = {}


def firmware_path(profile: Profile) -> Path | None:
    """The profile's firmware where this QEMU looks for its data files, or None (no firmware
    named, or this QEMU does not ship it: QEMU's default firmware boots the guest).  QEMU's own
    data folder (../share/qemu from its binary) is looked at first: asking QEMU (`-L help`)
    costs a process start, which would be on every boot's path."""
    if not profile.firmware or (binary := shutil.which(profile.qemu)) is None:
        return None
    if profile not in _FIRMWARE:
        beside = Path(binary).resolve().parent.parent / "share" / "qemu" / profile.firmware
        try:
            _FIRMWARE[profile] = beside if beside.is_file() else _listed(profile)
        except (OSError, subprocess.TimeoutExpired):
            return None  # QEMU did not answer: asked again next time, not remembered
    return _FIRMWARE[profile]


def _listed(profile: Profile) -> Path | None:
    """The firmware in the folders `QEMU -L help` lists (OSError, TimeoutExpired: no answer)."""
    listing = subprocess.run(
        [profile.qemu, "-L", "help"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    for folder in (line.strip() for line in listing.splitlines()):
        if folder and (path := Path(folder, profile.firmware)).is_file():
            return path.resolve()
    return None


def require_qemu(arch: str) -> None:
    """LabError naming the Debian package when the arch's QEMU is not installed."""
    profile = get_profile(arch)
    if shutil.which(profile.qemu) is None:
        raise LabError(
            f"{profile.qemu} not found: run `make deps` (Debian package {profile.qemu_package})"
        )
