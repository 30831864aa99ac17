"""Crash detection: a golden real log per pattern family, a corpus-wide measurement, and the
no-crash logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.crash import find_reports, patterns, strip_header

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "crashlogs"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "crashlogs"


@pytest.mark.parametrize("log", sorted(GOLDEN.glob("*.log")), ids=lambda p: p.name)
def test_golden_title(log: Path) -> None:
    title, body = strip_header(log.read_text(errors="replace"))
    assert title is not None
    reports = find_reports(body)
    assert reports, f"no report found in {log.name}"
    assert reports[0].title == title
    assert reports[0].text.strip()


def test_patterns_load_and_compile() -> None:
    kinds = {p.kind for p in patterns()}
    for kind in ("KASAN", "WARNING", "BUG", "PANIC", "HANG", "LEAK", "BAD_PAGE", "UBSAN", "KFENCE"):
        assert kind in kinds


def test_clean_boot_log_has_no_report() -> None:
    boot = (
        "[    0.000000] Linux version 6.1.0-56-amd64\n"
        '[    0.779617] PCI: Using host bridge windows from ACPI; if necessary, use "pci=nocrs" '
        "and report a bug\n"
        "[    1.101567] AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is "
        "not a bug.\n"
        "[    2.378340] multimap: loading out-of-tree module taints kernel.\n"
    )
    assert find_reports(boot) == []


def test_report_block_is_cut_at_end_marker() -> None:
    log = (
        "noise\n"
        "[   10.1] WARNING: CPU: 1 PID: 42 at mm/memory.c:123 zap_pte_range+0x1/0x2\n"
        "[   10.2] RIP: 0010:zap_pte_range+0x1/0x2\n"
        "[   10.3] ---[ end trace 0000000000000000 ]---\n"
        "[   11.0] unrelated line\n"
    )
    (report,) = find_reports(log)
    assert report.title == "WARNING in zap_pte_range" and report.kind == "WARNING"
    assert "unrelated" not in report.text and report.line == 2


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/crashlogs not present")
def test_corpus_rates() -> None:
    crash = detected = titled = clean = false_pos = 0
    for log in sorted(CORPUS.glob("*.log")):
        title, body = strip_header(log.read_text(errors="replace"))
        reports = find_reports(body)
        if title is None:
            clean += 1
            false_pos += bool(reports)
            continue
        crash += 1
        if reports:
            detected += 1
            titled += reports[0].title.split(" in ")[0] == title.split(" in ")[0]
    # The targets: >= 98% of crash logs detected, >= 95% titles equal up to " in ", and no
    # report at all on the logs without a crash.
    assert detected / crash >= 0.98, f"{detected}/{crash} detected"
    assert titled / crash >= 0.95, f"{titled}/{crash} titled like syzkaller"
    assert false_pos == 0
