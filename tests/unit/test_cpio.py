import io
import subprocess
from pathlib import Path

from lab.cpio import Archive


def sample() -> Archive:
    arc = Archive()
    arc.file("bin/tool", b"\x7fELF...", 0o755)
    arc.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
    arc.symlink("bin/sh", "busybox")
    arc.dir("root/.ssh", 0o700)
    arc.file("root/.ssh/authorized_keys", b"ssh-ed25519 AAAA test\n", 0o600)
    return arc


def test_deterministic() -> None:
    a, b = io.BytesIO(), io.BytesIO()
    sample().write(a)
    sample().write(b)
    assert a.getvalue() == b.getvalue()
    assert len(a.getvalue()) % 512 == 0


def test_real_cpio_reads_it_back(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sample().write(buf)
    listing = subprocess.run(
        ["cpio", "-itv"], input=buf.getvalue(), capture_output=True, check=True
    ).stdout.decode()
    assert "bin/sh -> busybox" in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(
        ["cpio", "-id", "--quiet"], input=buf.getvalue(), cwd=out, check=True, capture_output=True
    )
    assert (out / "etc/passwd").read_bytes() == b"root:x:0:0::/root:/bin/sh\n"
    assert (out / "bin/tool").stat().st_mode & 0o777 == 0o755
    assert (out / "root/.ssh").stat().st_mode & 0o777 == 0o700
    assert (out / "root/.ssh/authorized_keys").stat().st_mode & 0o777 == 0o600
