"""Host programs the lab runs: found where the distribution installs them, named by package.

Debian keeps depmod in /usr/sbin, which is not on a normal user's PATH: every tool is looked up
on PATH and then in the sbin directories, and a missing one is one clear error naming the Debian
package.  The table is data (lab/data/host_tools.toml); `remaplab doctor` checks exactly it."""

from __future__ import annotations

import os
import shutil
import tomllib
from functools import cache

from lab.errors import LabError
from lab.paths import DATA
from lab.profiles import profiles

SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


@cache
def table() -> dict[str, str]:
    """Every tool name (cross prefixes expanded) -> its Debian package."""
    rows: dict[str, str] = tomllib.loads((DATA / "host_tools.toml").read_text())["tools"]
    out: dict[str, str] = {}
    for name, package in rows.items():
        if "{cross}" in name:
            for prof in profiles().values():
                if prof.cross_compile:
                    out[name.format(cross=prof.cross_compile)] = package
        else:
            out[name] = package
    return out


def which(tool: str) -> str | None:
    """The tool's path: PATH first, then the sbin directories."""
    found = shutil.which(tool)
    if found is None:
        found = shutil.which(tool, path=os.pathsep.join(SBIN))
    return found


def require(tool: str) -> str:
    """The tool's path, or a LabError saying which package installs it."""
    path = which(tool)
    if path is None:
        package = table().get(tool)
        hint = f" (Debian package {package})" if package else ""
        raise LabError(f"{tool} not found on PATH or in {', '.join(SBIN)}: run `make deps`{hint}")
    return path


def packages() -> list[str]:
    """The Debian/Ubuntu packages the lab needs on the host (lab/data/host_packages.txt)."""
    lines = (DATA / "host_packages.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def install_command(host_arch: str) -> str:
    """The root shell command that installs them: the arm64 foreign architecture first (the lab
    downloads arm64 guest packages) unless the host is arm64 (dpkg's name for its arch)."""
    steps = [] if host_arch == "arm64" else ["dpkg --add-architecture arm64"]
    steps += [
        "apt-get update",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        + " ".join(packages()),
    ]
    return " && ".join(steps)
