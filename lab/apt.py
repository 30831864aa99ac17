"""Debian packages without installing them: ``apt-get download`` + ``dpkg-deb -x``."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from lab.cache import sha256_file
from lab.errors import LabError

APT_TIMEOUT_S = 600


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=APT_TIMEOUT_S, check=False
        )
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} not found: remaplab needs Debian's apt tools") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)} did not finish within {APT_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        hint = ""
        if "Unable to locate package" in proc.stderr or "no installation candidate" in proc.stderr:
            hint = (
                " (is the architecture added? `make deps` runs dpkg --add-architecture"
                " and apt-get update)"
            )
        raise LabError(f"{' '.join(argv)} failed: {err}{hint}")
    return proc.stdout


def qualified(name: str, debian_arch: str | None) -> str:
    return f"{name}:{debian_arch}" if debian_arch else name


def depends_of(package: str, prefix: str) -> str:
    """The first dependency of a metapackage whose name starts with prefix."""
    out = _run(["apt-cache", "depends", package])
    for line in out.splitlines():
        match = re.match(r"\s*Depends:\s*<?([^\s:>]+)", line)
        if match and match.group(1).startswith(prefix):
            return match.group(1)
    raise LabError(f"apt-cache depends {package}: no dependency named {prefix}*")


def version_of(package: str) -> str:
    out = _run(["apt-cache", "show", "--no-all-versions", package])
    match = re.search(r"^Version:\s*(\S+)", out, re.M)
    if not match:
        raise LabError(f"apt-cache show {package}: no Version field")
    return match.group(1)


def download(packages: list[str], dest: Path) -> list[Path]:
    """The .debs of packages in dest (no root needed), verified against apt's SHA256.

    Files already present with the right checksum are reused; the rest are downloaded."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".dl-") as tmp:
        wanted: dict[str, str] = {}  # filename -> sha256
        # Run where nothing is downloaded yet: apt prints no URI for a file already in cwd.
        listing = _run(["apt-get", "download", "--print-uris", *packages], cwd=Path(tmp))
        for line in listing.splitlines():
            match = re.match(r"'[^']+'\s+(\S+)\s+\d+\s+SHA256:([0-9a-f]{64})", line)
            if match:
                wanted[match.group(1)] = match.group(2)
        if len(wanted) != len(packages):
            raise LabError(f"apt-get download --print-uris {' '.join(packages)}: unexpected answer")
        if any(
            not (dest / name).exists() or sha256_file(dest / name) != digest
            for name, digest in wanted.items()
        ):
            _run(["apt-get", "download", "-q", *packages], cwd=Path(tmp))
            for deb in Path(tmp).glob("*.deb"):
                os.replace(deb, dest / deb.name)
    out = []
    for name, digest in sorted(wanted.items()):
        path = dest / name
        if not path.exists() or sha256_file(path) != digest:
            raise LabError(f"{path}: missing or SHA256 mismatch after download")
        out.append(path)
    return out


def extract(deb: Path, root: Path) -> None:
    _run(["dpkg-deb", "-x", str(deb), str(root)])
