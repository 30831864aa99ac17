"""Debian packages without installing them: ``apt-get download`` + ``dpkg-deb -x``."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from lab.cache import hash_strings, sha256_file
from lab.errors import LabError
from lab.paths import cache_dir

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


APT_LISTS = Path("/var/lib/apt/lists")


def _lists_state() -> str:
    """Identity of the local package lists: apt-cache answers change only when they do."""
    parts: list[str | bytes] = []
    try:
        for path in sorted(APT_LISTS.iterdir()):
            if path.name.endswith("_Packages") or path.name.endswith("Release"):
                st = path.stat()
                parts += [path.name, str(st.st_size), str(st.st_mtime_ns)]
    except OSError:
        return "no-lists"
    return hash_strings(parts)


def _query(argv: list[str]) -> str:
    """apt-cache output, memoised per state of the package lists (each call costs ~1 s)."""
    memo = cache_dir() / "apt-queries"
    memo.mkdir(parents=True, exist_ok=True)
    path = memo / f"{hash_strings([_lists_state(), *argv])}.txt"
    try:
        return path.read_text()
    except OSError:
        pass
    out = _run(argv)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(out)
    os.replace(tmp, path)
    return out


def qualified(name: str, debian_arch: str | None) -> str:
    return f"{name}:{debian_arch}" if debian_arch else name


def depends_of(package: str, prefix: str) -> str:
    """The first dependency of a metapackage whose name starts with prefix."""
    out = _query(["apt-cache", "depends", package])
    for line in out.splitlines():
        match = re.match(r"\s*Depends:\s*<?([^\s:>]+)", line)
        if match and match.group(1).startswith(prefix):
            return match.group(1)
    raise LabError(f"apt-cache depends {package}: no dependency named {prefix}*")


def version_of(package: str) -> str:
    return versions_of([package])[package]


def versions_of(packages: list[str]) -> dict[str, str]:
    """Candidate versions of name[:arch] packages, in one apt-cache call."""
    out = _query(["apt-cache", "show", "--no-all-versions", *packages])
    found: dict[str, str] = {}
    for block in out.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Architecture|Version):\s*(\S+)", block, re.M))
        if "Package" in fields and "Version" in fields:
            found[f"{fields['Package']}:{fields.get('Architecture', '')}"] = fields["Version"]
    result = {}
    for pkg in packages:
        name, _, arch = pkg.partition(":")
        for key in (f"{name}:{arch}", f"{name}:all") if arch else ():
            if key in found:
                result[pkg] = found[key]
                break
        else:
            matches = [v for k, v in found.items() if k.split(":")[0] == name]
            if not matches:
                raise LabError(f"apt-cache show {pkg}: no such package")
            result[pkg] = matches[0]
    return result


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
