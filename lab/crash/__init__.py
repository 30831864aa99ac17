"""Kernel crash reports in a console log: found, cut out, classified and titled.

The patterns are data (lab/data/crash_patterns.toml); this package only applies them.  Titles
follow syzkaller's convention ("KASAN: use-after-free Read in foo", "WARNING in bar")."""

from __future__ import annotations

import re
from typing import Any

from lab.crash.report import Report, could_start_report, decode_log, find_reports, strip_prefix
from lab.crash.table import Pattern, TableError, table

__all__ = [
    "Pattern",
    "Report",
    "TableError",
    "could_start_report",
    "decode_log",
    "find_reports",
    "patterns",
    "settled_reports",
    "strip_header",
    "strip_prefix",
]


def patterns() -> tuple[Pattern, ...]:
    return table().patterns


HEADER_KEY = re.compile(r"^[A-Z][A-Z_]*: ")  # TITLE:, ALT:, TYPE:, CORRUPTED:, ...


def strip_header(text: str) -> tuple[str | None, str]:
    """A syzkaller report test file (pkg/report/testdata): header lines up to the first blank
    line ('# ' comments, 'TITLE: ...', 'ALT: ...' and other 'KEY: ' lines), then the console
    log, then maybe a blank line and 'REPORT:' with the report syzkaller should cut out (not
    console).  Returns (the TITLE or None, the console log); text without such a header is
    returned whole."""
    lines = text.split("\n")
    end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    head = lines[:end]
    header = all(ln.startswith("#") or HEADER_KEY.match(ln) for ln in head)
    # ... and a TITLE or a comment in it: 'KEY: ' lines alone are console ('RIP: ...')
    if not head or not header or not any(ln.startswith(("TITLE: ", "#")) for ln in head):
        return None, text
    title = next(
        (ln.removeprefix("TITLE: ").strip() for ln in head if ln.startswith("TITLE: ")), None
    )
    body = lines[end + 1 :]
    for i in range(1, len(body)):
        if body[i] == "REPORT:" and not body[i - 1].strip():
            body = body[: i - 1]
            break
    return title, "\n".join(body)


def settled_reports(
    console: Any, mark: int, quiet: float = 0.5, limit: float = 5.0
) -> list[Report]:
    """Reports on a live console since offset mark.  Once one has begun, wait (bounded by
    limit) until the console has been quiet for `quiet` seconds, so it is cut out whole."""
    reports = find_reports(console.text(mark), after_boot=True)
    if reports:
        console.wait_quiet(quiet, limit)
        reports = find_reports(console.text(mark), after_boot=True)
    return reports
