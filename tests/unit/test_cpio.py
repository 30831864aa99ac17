import io
import stat
import subprocess
from pathlib import Path

import pytest

from lab.cpio import Archive, read


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


def test_read_gives_back_what_was_written() -> None:
    buf = io.BytesIO()
    sample().write(buf)
    entries = read(buf.getvalue())
    assert entries == sample().entries


def test_read_a_real_cpio_archive(tmp_path: Path) -> None:
    """What GNU cpio writes (-H newc, the format of every initramfs), not only our writer."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "odd.bin").write_bytes(b"x" * 5)  # lengths that need padding
    (tmp_path / "d" / "ln").symlink_to("odd.bin")
    made = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        input=b"d\nd/odd.bin\nd/ln\n",
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    entries = read(made)
    assert entries["d/odd.bin"][1] == b"xxxxx" and stat.S_ISREG(entries["d/odd.bin"][0])
    assert entries["d/ln"] == (entries["d/ln"][0], b"odd.bin") and stat.S_ISLNK(entries["d/ln"][0])
    assert stat.S_ISDIR(entries["d"][0])


def test_read_appended_archives_replace_files_in_order() -> None:
    """As the kernel unpacks an initramfs made of several archives: the later file wins."""
    first, second = io.BytesIO(), io.BytesIO()
    sample().write(first)
    later = Archive()
    later.file("etc/passwd", b"replaced\n")
    later.file("etc/new", b"new\n")
    later.write(second)
    entries = read(first.getvalue() + second.getvalue())
    assert entries["etc/passwd"][1] == b"replaced\n"
    assert entries["etc/new"][1] == b"new\n" and entries["bin/sh"][1] == b"busybox"


def test_read_refuses_what_is_not_newc() -> None:
    with pytest.raises(ValueError, match="not a newc cpio header at offset 0"):
        read(b"\x1f\x8b gzip data")
