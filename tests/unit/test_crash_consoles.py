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
