"""Debian's linux-source package: the kernel tree as a tarball inside a .deb (checkpatch.pl and
the lab-built kernel come from it)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab import apt
from lab.errors import LabError
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

    def extract(self, dest: Path, members: tuple[str, ...] = ()) -> None:
        """Unpack the kernel tree (or only members, paths inside it) below dest/<package>."""
        deb = self.download()
        wanted = [f"{self.package}/{m}" for m in members]
        script = (
            'deb=$1 inner=$2 dest=$3; shift 3; dpkg-deb --fsys-tarfile "$deb" | '
            'tar -xO "$inner" | tar -xJ -C "$dest" "$@"'
        )
        proc = subprocess.run(
            ["sh", "-ec", script, "sh", str(deb), self.tarball, str(dest), *wanted],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        missing = [m for m in wanted if not (dest / m).exists()]
        if proc.returncode != 0 or missing or not (dest / self.package).is_dir():
            raise LabError(
                f"{deb.name}: cannot extract {self.tarball} {' '.join(members)}: "
                f"{proc.stderr.strip()[-300:]}"
            )


def linux_source(series: str = SERIES) -> LinuxSourceDeb:
    package = f"linux-source-{series}"
    return LinuxSourceDeb(package, apt.version_of(package))
