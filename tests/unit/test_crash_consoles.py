"""Exact titles for the crash reports the lab relies on (scenario expectations match them),
on console excerpts in tests/data/consoles (derived from the 6.1 printk formats, see its
README) and on the recorded multimap Bad page log."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.crash import find_reports

DATA = Path(__file__).resolve().parents[1] / "data"
CONSOLES = [
    ("consoles/refcount-underflow-x86_64.log", "REFCOUNT",
     "WARNING: refcount bug in multimap_buffer_put", "multimap_buffer_put"),
    ("consoles/kasan-uaf-read-x86_64.log", "KASAN",
     "KASAN: use-after-free Read in multimap_readback", "multimap_readback"),
    ("consoles/sysrq-crash-x86_64.log", "PANIC", "kernel panic: sysrq triggered crash", None),
    ("multimap-bad-page.log", "BAD_PAGE",
     "BUG: Bad page state in multimap_free_pages", "multimap_free_pages"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kind", "title", "func"), CONSOLES, ids=[c[0] for c in CONSOLES])
def test_console_golden(name: str, kind: str, title: str, func: str | None) -> None:
    reports = find_reports((DATA / name).read_text())
    assert len(reports) == 1, [r.title for r in reports]
    (report,) = reports
    assert (report.kind, report.title, report.function) == (kind, title, func)


def test_panic_report_runs_to_its_end_marker() -> None:
    (report,) = find_reports((DATA / "consoles/sysrq-crash-x86_64.log").read_text())
    assert report.line == 2
    assert report.text.splitlines()[-1].startswith("---[ end Kernel panic")


HOST_LOG_PREFIXES = [
    "Nov 29 19:00:01 buildhost kernel: ",  # syslog, /var/log/kern.log
    "Nov  9 07:03:11 buildhost kernel: ",  # a one-digit day
    "2026-11-29T19:00:01+0000 buildhost kernel: ",  # journalctl -o short-iso
    "2026-11-29T19:00:01.123456+00:00 buildhost kernel: ",  # short-iso-precise
    "[Sun Nov 29 19:00:01 2026] ",  # dmesg -T
]


@pytest.mark.parametrize("prefix", HOST_LOG_PREFIXES)
def test_a_report_saved_from_the_hosts_logs_reads_as_from_the_console(prefix: str) -> None:
    """The same title, and a text without the logger's prefix, as from the console itself."""
    console = (DATA / "consoles/kasan-uaf-read-x86_64.log").read_text()
    (plain,) = find_reports(console)
    logged = "".join(prefix + line for line in console.splitlines(keepends=True))
    (report,) = find_reports(logged)
    assert (report.kind, report.title) == (plain.kind, plain.title)
    assert report.text == plain.text
