"""``remaplab doctor``: what this host has, as a table."""

from __future__ import annotations

import shutil
import subprocess

from rich.console import Console
from rich.table import Table

from lab import accel, cache, hosttools
from lab.paths import cache_dir
from lab.profiles import firmware_path, profiles


def _version(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"error: {exc}"
    out = (proc.stdout or proc.stderr).strip().splitlines()
    return out[0] if out else "?"


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def doctor() -> int:
    table = Table(title="remaplab doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    problems = 0

    def row(name: str, ok: bool | None, detail: str) -> None:
        nonlocal problems
        status = {True: "[green]ok[/]", False: "[red]missing[/]", None: "[yellow]note[/]"}[ok]
        problems += ok is False
        table.add_row(name, status, detail)

    for arch, prof in profiles().items():
        path = shutil.which(prof.qemu)
        row(
            f"QEMU {arch}",
            path is not None,
            _version([prof.qemu, "--version"]) if path else "run make deps",
        )
        if prof.firmware and path:
            bios = firmware_path(prof)
            row(
                f"firmware {arch}",
                None,
                f"{bios}" if bios else f"{prof.firmware} not shipped by this QEMU: its default",
            )
        if prof.cross_compile:
            gcc = f"{prof.cross_compile}gcc"
            found = shutil.which(gcc)
            row(
                f"cross compiler {arch}",
                found is not None,
                _version([gcc, "--version"]) if found else "run make deps",
            )
        obstacle = accel.kvm_obstacle(prof)
        if obstacle:
            row(f"KVM for {arch}", None, f"not usable: {obstacle}; TCG will be used")
        else:
            seen = accel.cached_verdicts()
            detail = "/dev/kvm present; a bounded boot probe decides on first use"
            if seen and not seen[0][0]:
                detail = f"/dev/kvm present but the latest probe failed: {seen[0][1]}"
            elif seen:
                detail = "/dev/kvm present and the latest probe booted a guest"
            row(f"KVM for {arch}", None, detail)
    for tool, package in hosttools.table().items():
        path = hosttools.which(tool)
        row(tool, path is not None, path or f"run make deps (Debian package {package})")
    root = cache_dir()
    row("cache", None, f"{root} ({_human(cache.tree_size(root))})")
    for kind in ("kernels", "userland", "initramfs", "debs"):
        items = (
            list(cache.entries(kind)) if kind != "debs" else sorted((root / "debs").glob("*.deb"))
        )
        if items:
            size = sum(cache.tree_size(p) if p.is_dir() else p.stat().st_size for p in items)
            names = ", ".join(p.name for p in items[:4]) + (" ..." if len(items) > 4 else "")
            row(f"cache/{kind}", None, f"{len(items)} entries, {_human(size)}: {names}")
    Console().print(table)
    return 1 if problems else 0
