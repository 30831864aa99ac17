"""Debian's linux-source package: the kernel tree as a tarball inside a .deb (checkpatch.pl and
the lab-built kernel come from it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab import apt
from lab.paths import cache_dir

SERIES = "6.1"


@dataclass(frozen=True)
class LinuxSourceDeb:
    package: str
    version: str

    @property
    def tarball(self) -> str:
        """The source tarball's member name inside the .deb's data."""
        return f"./usr/src/{self.package}.tar.xz"

    def download(self) -> Path:
        (deb,) = apt.download([f"{self.package}={self.version}"], cache_dir() / "debs")
        return deb


def linux_source(series: str = SERIES) -> LinuxSourceDeb:
    package = f"linux-source-{series}"
    return LinuxSourceDeb(package, apt.version_of(package))
