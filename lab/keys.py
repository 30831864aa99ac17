"""The lab's SSH identity: one client key and one guest host key per cache, mode 0600.

The guest host key is baked into the initramfs; the client pins its public half (no
auto-accept).  Keys are generated on first use, never shipped in the repository."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from filelock import FileLock

from lab.errors import LabError
from lab.hosttools import require
from lab.paths import cache_dir


@dataclass(frozen=True)
class LabKeys:
    client_key: Path  # OpenSSH private key for paramiko
    client_pub: str  # "ssh-ed25519 AAAA... remaplab"
    host_key: Path  # dropbear-format private host key for the guest
    host_pub: str  # "ssh-ed25519 AAAA..." to pin


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _gen_client(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    _write_private(path, pem)
    pub = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path.with_suffix(".pub").write_text(pub.decode() + " remaplab\n")


def _gen_host(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    proc = subprocess.run(
        [require("dropbearkey"), "-t", "ed25519", "-f", str(tmp)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise LabError(f"dropbearkey failed: {proc.stderr.strip()}")
    pub = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ssh-ed25519 ")), None)
    if pub is None:
        raise LabError("dropbearkey printed no ssh-ed25519 public key")
    os.chmod(tmp, 0o600)
    path.with_suffix(".pub").write_text(" ".join(pub.split()[:2]) + "\n")
    os.replace(tmp, path)


def lab_keys() -> LabKeys:
    kdir = cache_dir() / "keys"
    kdir.mkdir(parents=True, exist_ok=True)
    os.chmod(kdir, 0o700)
    client = kdir / "id_ed25519"
    host = kdir / "guest_host_ed25519"
    with FileLock(str(kdir / ".lock"), timeout=60):
        if not client.exists() or not client.with_suffix(".pub").exists():
            _gen_client(client)
        if not host.exists() or not host.with_suffix(".pub").exists():
            _gen_host(host)
    for path in (client, host):
        mode = path.stat().st_mode & 0o777
        if mode != 0o600:
            raise LabError(f"{path} has mode {mode:o}; the lab's keys must be 0600")
    return LabKeys(
        client_key=client,
        client_pub=client.with_suffix(".pub").read_text().strip(),
        host_key=host,
        host_pub=host.with_suffix(".pub").read_text().strip(),
    )
