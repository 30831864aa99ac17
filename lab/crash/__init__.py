"""Kernel crash reports in a console log: found, cut out, classified and titled.

The patterns are data (lab/data/crash_patterns.toml); this package only applies them.  Titles
follow syzkaller's convention ("KASAN: use-after-free Read in foo", "WARNING in bar")."""

from __future__ import annotations

from typing import Any

from lab.crash.report import Report, decode_log, find_reports, strip_prefix
from lab.crash.table import Pattern, TableError, table

__all__ = [
    "Pattern",
    "Report",
    "TableError",
    "decode_log",
    "find_reports",
    "patterns",
    "settled_reports",
    "strip_header",
    "strip_prefix",
]


def patterns() -> tuple[Pattern, ...]:
    return table().patterns


def strip_header(text: str) -> tuple[str | None, str]:
    """syzkaller corpus files start with 'TITLE: ...' header lines and a blank line."""
    lines = text.split("\n")
    if not lines or not lines[0].startswith("TITLE: "):
        return None, text
    title = lines[0].removeprefix("TITLE: ").strip()
    for idx, line in enumerate(lines):
        if not line.strip():
            return title, "\n".join(lines[idx + 1 :])
    return title, ""


def settled_reports(
    console: Any, mark: int, quiet: float = 0.5, limit: float = 5.0
) -> list[Report]:
    """Reports on a live console since offset mark.  Once one has begun, wait (bounded by
    limit) until the console has been quiet for `quiet` seconds, so it is cut out whole."""
    reports = find_reports(console.text(mark))
    if reports:
        console.wait_quiet(quiet, limit)
        reports = find_reports(console.text(mark))
    return reports
