"""A kernel report printed while the guest booted is not hidden (lab/bootcheck.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pexpect

from lab import bootcheck
from lab.console import Console

DATA = Path(__file__).resolve().parents[1] / "data"


def test_a_report_during_boot_is_found_with_its_text_saved(tmp_path: Path) -> None:
    text = (DATA / "boot" / "kasan-report-during-boot-x86_64.log").read_text()
    found = bootcheck.check(text, tmp_path, 1)
    assert found is not None
    assert str(found) == (
        "kernel report during boot: KASAN: wild-memory-access Write in handle_edge_irq"
    )
    assert found.saved == tmp_path / "boot-report-1.txt"
    assert "identify_cpu" in found.saved.read_text()


def test_a_clean_boot_passes(tmp_path: Path) -> None:
    text = (DATA / "boot" / "kasan-report-during-boot-x86_64.log").read_text()
    clean = text.split("==================================================================")[-1]
    assert "remaplab: ready" in clean
    assert bootcheck.check(clean, tmp_path, 1) is None
    assert not list(tmp_path.iterdir())


class Guest:
    """The parts of a VM bootcheck.retry reads and writes; its console is a real Console
    reading a real process that prints the recorded boot."""

    def __init__(self, tmp_path: Path, boot_log: Path) -> None:
        self.child = pexpect.spawn("cat", [str(boot_log)])
        self.console: Console | None = Console(self.child, tmp_path / "console.log")
        self.console.wait_for("remaplab: ready", 10.0, "the recorded boot's end")
        self.workdir = tmp_path
        self.stalls: list[Path] = []
        self.boot_reported = False
        self.boot_notes: list[str] = []
        self.logged: list[str] = []
        self.options = SimpleNamespace(arch="x86_64")

    def log(self, line: str) -> None:
        self.logged.append(line)


def test_a_report_during_boot_retries_once_then_is_noted(tmp_path: Path) -> None:
    guest = Guest(tmp_path, DATA / "boot" / "kasan-report-during-boot-x86_64.log")
    assert guest.boot_reported is False
    assert bootcheck.retry(guest, 0, retried=False) is True  # type: ignore[arg-type]
    assert guest.boot_reported is True
    assert guest.boot_notes == [
        "boot retried: kernel report during boot: KASAN: wild-memory-access Write in "
        f"handle_edge_irq (its text: {tmp_path / 'boot-report-1.txt'})"
    ]
    # the retry reports again: noted, kept, and the guest is used
    assert bootcheck.retry(guest, 1, retried=True) is False  # type: ignore[arg-type]
    assert "again after a retry; the guest is used" in guest.boot_notes[1]
    assert guest.stalls == [tmp_path / "boot-report-1.txt", tmp_path / "boot-report-2.txt"]
    assert all(p.is_file() for p in guest.stalls)
