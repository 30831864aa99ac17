"""Kernel crash reports in a console log: found, cut out, classified and titled.

The patterns are data (lab/data/crash_patterns.toml); this module only applies them.  Titles
follow syzkaller's convention ("KASAN: use-after-free Read in foo", "WARNING in bar")."""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

# "[  12.345678]", "[  12.345678][ T123]", "[  12.345678][    C1]" and syslog-style prefixes.
PREFIX = re.compile(
    r"^(?:\*\* \d+ printk messages dropped \*\* )?"
    r"(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?(?:<\d+>)?"
    r"(?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])?\s?"
)
_ADDR = r"(?:\[<[0-9a-f]+>\] )?"
IP_LINE = re.compile(
    rf"(?:RIP: [0-9a-f]{{4}}:{_ADDR}|\bpc ?: {_ADDR}|EIP: {_ADDR}|PC is at |IP: {_ADDR})"
    r"(?P<func>[A-Za-z_][A-Za-z0-9_.]*)\+0x"
)
FRAME = re.compile(
    rf"^\s*{_ADDR}{_ADDR}(?P<q>\? )?(?P<func>[A-Za-z_][A-Za-z0-9_.]*)\+0x[0-9a-f]+/0x"
)
END = re.compile(r"---\[ end (trace|Kernel panic)|^Kernel Offset:|^Rebooting in|^---\[ end")
MAX_LINES = 300
# Frames that belong to the reporting machinery, not to the culprit.
SKIP_FRAMES = re.compile(
    r"^(dump_stack\w*|__dump_stack|show_stack|print_address_description\w*|print_report|"
    r"kasan_\w+|__kasan_\w+|report_\w+|__warn\w*|warn_\w+|warn_slowpath\w*|panic|"
    r"__panic|do_error_trap|do_trap|handle_bug|exc_\w+|asm_exc_\w+|die|oops_\w+|"
    r"__schedule|schedule\w*|io_schedule\w*|__mutex_lock\w*|mutex_lock\w*|"
    r"__lock_acquire|lock_acquire\w*|lock_release|check_\w+|validate_chain|print_\w+|"
    r"__print\w+|mark_lock\w*|lockdep_\w+|debug_\w+|__debug_\w+|kmsan_\w+|__msan_\w+|"
    r"kfence_\w+|ubsan_\w+|__ubsan_\w+|refcount_\w+|__refcount_\w+|kmemleak_\w+|"
    r"kmem_cache_alloc\w*|kmalloc\w*|__kmalloc\w*|kzalloc\w*|__kmem_cache_alloc\w*|"
    r"slab_\w+|__slab_\w+|___slab_\w+|kvmalloc\w*|krealloc\w*|__alloc_pages\w*|"
    r"alloc_pages\w*|__do_kmalloc\w*|rcu_\w+|__rcu_\w+|wait_for_completion\w*|"
    r"__wait_\w+|bit_wait\w*|out_of_line_wait\w*|__might_\w+|___might_\w+|"
    r"might_\w+|dump_\w+|__list_\w+_valid\w*|list_\w+_corruption\w*|__stack_chk_fail|"
    r"bad_page|free_pages_check\w*|free_page_is_bad\w*|__free_pages_ok|"
    r"free_\w*pages_prepare|show_regs|__show_regs|arch_\w+|do_\w*error\w*)$"
)


@dataclass(frozen=True)
class Pattern:
    start: re.Pattern[str]
    kind: str
    title: str
    func: str
    numbers: str | None = None  # replace digit runs in the title with this


@dataclass(frozen=True)
class Report:
    kind: str
    title: str
    text: str
    line: int  # 1-based line of the report's first line in the log
    function: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def patterns() -> tuple[Pattern, ...]:
    data = tomllib.loads((Path(__file__).parent / "data" / "crash_patterns.toml").read_text())
    return tuple(
        Pattern(re.compile(p["start"]), p["kind"], p["title"], p["func"], p.get("numbers"))
        for p in data["pattern"]
    )


def strip_prefix(line: str) -> str:
    return PREFIX.sub("", line, count=1)


def _start(line: str) -> tuple[Pattern, re.Match[str]] | None:
    for pat in patterns():
        match = pat.start.search(line)
        if match:
            return pat, match
    return None


def _culprit(pat: Pattern, match: re.Match[str], body: list[str]) -> str | None:
    if pat.func == "none":
        return None
    if pat.func == "start" and match.groupdict().get("func"):
        return match.group("func")
    if pat.func == "ip":
        for line in body:
            ip = IP_LINE.search(line)
            if ip and not SKIP_FRAMES.match(ip.group("func")):
                return ip.group("func")
    for line in body[1:]:
        frame = FRAME.match(line)
        if frame and not frame.group("q") and not SKIP_FRAMES.match(frame.group("func")):
            return frame.group("func")
    return None


def _title(pat: Pattern, match: re.Match[str], body: list[str], func: str | None) -> str:
    access = ""
    # syzkaller takes the access type only from the line right after the header.
    following = [ln for ln in body[1:4] if ln.strip() and not ln.startswith("===")][:1]
    for line in following:
        m = re.search(r"\b(Read|Write) (of size|at addr)", line)
        if m:
            access = f" {m.group(1)}"
    values = {str(i): (g or "") for i, g in enumerate(match.groups(), start=1)}
    values.update({k: (v or "").strip() for k, v in match.groupdict().items()})
    values["access"] = access
    title = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), ""), pat.title)
    if pat.numbers:
        title = re.sub(r"\d+", pat.numbers, title)
    if pat.func == "none" or "{reason}" in pat.title:
        return title
    return f"{title} in {func}" if func else f"{title} in corrupted"


def find_reports(text: str) -> list[Report]:
    lines = [strip_prefix(ln.rstrip("\r")) for ln in text.splitlines()]
    reports: list[Report] = []
    i = 0
    while i < len(lines):
        found = _start(lines[i])
        if found is None:
            i += 1
            continue
        pat, match = found
        end = i + 1
        while end < len(lines) and end - i < MAX_LINES:
            if END.search(lines[end]):
                end += 1
                break
            if end - i > 2 and _start(lines[end]) is not None:
                break
            end += 1
        body = lines[i:end]
        func = _culprit(pat, match, body)
        reports.append(
            Report(
                kind=pat.kind,
                title=_title(pat, match, body, func),
                text="\n".join(body),
                line=i + 1,
                function=func,
            )
        )
        i = end
    return reports


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
