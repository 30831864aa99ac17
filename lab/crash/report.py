"""Kernel reports in a console log: found, cut out, classified and titled by the table."""

from __future__ import annotations

import codecs
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from lab.crash.stack import culprit
from lab.crash.table import Pattern, Table, table

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_MAX_TITLE = 120
_SCAN_FACTOR = 4  # lines of other contexts read past while following one report
# syzkaller's findReport: up to 5 lines before a report, 50 with a printk caller ("[T123]"),
# whose lines are all that task's
_BEFORE, _BEFORE_TASK = 5, 50
_LAB_LINE = "remaplab: "
FOREIGN = "foreign"  # the context of a host logger's line of another program


@dataclass(frozen=True)
class Report:
    kind: str
    title: str
    text: str
    line: int  # 1-based line of the report's first line in the log
    function: str | None
    # Lines of the same printk context just before the heading, which often explain it
    # (dump_page()'s "page dumped because: VM_BUG_ON_PAGE(...)" before its "kernel BUG at",
    # dump_vma() before a VM_BUG_ON_VMA); never used for the title.
    before: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Line:
    text: str  # without the printk prefix
    context: str  # "" (no timestamp), "console" (timestamp only), "T123" or "C1"
    stamp: str = ""  # the timestamp and caller as printed ("[ 12.345678][ T41]"), if any


# Logs saved by other tools: Notepad adds a UTF-8 BOM, PowerShell's `>` writes UTF-16 (with a
# BOM).  A kernel log is nearly all ASCII, so UTF-16 shows as a NUL beside nearly every byte; a
# BOM alone is no proof (a serial console can start with stray FF FE bytes).
_SNIFF = 4096  # bytes looked at for UTF-16


def _codec(raw: bytes) -> str:
    """utf-8-sig after a UTF-8 BOM; UTF-16 (LE or BE) when nearly every other byte is NUL (a
    serial console's stray NULs are far fewer); else UTF-8."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    head = raw[: _SNIFF - _SNIFF % 2]
    if len(head) >= 16 and len(raw) % 2 == 0:
        half = len(head) // 2
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if odd >= 0.9 * half and even <= 0.1 * half:
            return "utf-16-le"
        if even >= 0.9 * half and odd <= 0.1 * half:
            return "utf-16-be"
    return "utf-8"


def decode_log(raw: bytes) -> str:
    """A console log as text: UTF-8 (or as a BOM or UTF-16's NULs say), invalid bytes replaced,
    NUL bytes dropped (consoles hold both)."""
    return raw.decode(_codec(raw), errors="replace").lstrip("\ufeff").replace("\0", "")


def strip_prefix(line: str) -> str:
    m = table().console.prefix.match(line)
    return line[m.end() :] if m else line


def _split(text: str, tab: Table) -> list[_Line]:
    raws = [raw.rstrip("\r") for raw in text.replace("\0", "").splitlines()]
    out = []
    for raw in raws:
        m = tab.console.prefix.match(raw)
        assert m is not None  # every part of the prefix is optional
        groups = m.groupdict()
        context = groups.get("context") or ("console" if groups.get("ts") else "")
        if groups.get("foreign"):
            context = FOREIGN  # another program's line in a host's log: never the kernel's
        stamp = m.group(0)[m.start("ts") :].strip() if groups.get("ts") else ""
        out.append(_Line(m.string[m.end() :], context, stamp))
    _drop_replayed(raws, out, tab)
    return out


def _drop_replayed(raws: list[str], lines: list[_Line], tab: Table) -> None:
    """kernel/printk/nbcon.c: a console that takes over another one's printing mid-record
    prints a replay note, then the whole record again ("INFO: t", the note, "INFO: task
    udevd:5612 blocked ...").  The cut copy, the start of the line after the note, is blanked
    with the note (not removed: line numbers hold)."""
    for i in range(1, len(lines) - 1):
        if tab.console.replay.search(lines[i].text) and raws[i + 1].startswith(raws[i - 1]):
            lines[i - 1] = _Line("", lines[i - 1].context)
            lines[i] = _Line("", lines[i].context)


def _split_record(
    lines: list[_Line], i: int, hit: tuple[int, re.Match[str]], tab: Table
) -> tuple[int, re.Match[str]]:
    """A report's first line cut in two by a newline inside one printk (a task renamed by a
    fuzzer to bytes holding one: 'INFO: task <name\nrest>:123 blocked...' comes out as two lines
    with the very same timestamp and caller).  When the line and the next one share that prefix
    and, joined, a more specific pattern (earlier in the table) starts there, the joined line
    and that pattern; else hit."""
    if i + 1 >= len(lines) or not lines[i].stamp or lines[i + 1].stamp != lines[i].stamp:
        return hit
    joined = f"{lines[i].text} {lines[i + 1].text}"
    better = _start(joined, tab, True)
    if better is None or better[0] >= hit[0]:
        return hit
    lines[i] = replace(lines[i], text=joined)
    lines[i + 1] = replace(lines[i + 1], text="")
    return better


def _start(line: str, tab: Table, booted: bool) -> tuple[int, re.Match[str]] | None:
    """The first pattern whose start matches the line (its index and match), if any."""
    if not tab.any_start.search(line) or tab.console.ignore.search(line):
        return None
    for idx, pat in enumerate(tab.patterns):
        m = pat.start.search(line)
        if m and (booted or not pat.after_output):
            return idx, m
    return None


def _same(ctx: str, line: _Line, cpu_trace: bool) -> bool:
    return line.context == ctx or (cpu_trace and line.context.startswith("C"))


def _extent(lines: list[_Line], first: int, tab: Table, whole: bool) -> list[int]:
    """Indices of the report's lines (its printk context only).  The report ends at an end
    marker, at the next report or at a cut message; for its title (whole) only at the next
    report, and not even there when a printk caller context tells its lines apart."""
    con, ctx = tab.console, lines[first].context
    own = _start(lines[first].text, tab, True)
    kind = tab.patterns[own[0]].kind if own is not None else None
    plain = ctx in ("", "console")
    body, j, cpu_trace = [first], first + 1, False
    limit = first + con.max_lines * _SCAN_FACTOR
    while j < len(lines) and j < limit and len(body) < con.max_lines:
        line = lines[j]
        j += 1
        if not _same(ctx, line, cpu_trace):
            continue
        cpu_trace = cpu_trace or "Sending NMI from CPU" in line.text
        if plain and con.cut.search(line.text):
            break
        hit = _start(line.text, tab, True)
        cuts = hit is not None and tab.patterns[hit[0]].cut
        if cuts and len(body) == 1 and hit is not None and tab.patterns[hit[0]].kind == kind:
            cuts = False  # the heading's own record right after it ("BUG: memory leak")
        if cuts and (plain or not whole):
            break
        body.append(j - 1)
        if not whole and con.end.search(line.text):
            break
    return body


def _plain_text(lines: list[_Line], idx: list[int], tab: Table) -> list[str]:
    """The report's text without unreliable frames (where a printk prefix marks lines)."""
    out = [lines[idx[0]].text]
    for i in idx[1:]:
        text = lines[i].text
        shaky = tab.console.questionable.search(text) and "<EOI>" not in text
        if not (lines[i].context and shaky):
            out.append(text)
    return out


def _title_lines(texts: list[str], tab: Table) -> list[str]:
    """The lines a title is taken from: no aftermath (panic_on_warn, induced lockdep splats)."""
    con = tab.console
    out = []
    for n, text in enumerate(texts):
        if n >= con.aftermath_after and con.aftermath.search(text):
            break
        if n == 0 or not con.skip_lines.search(text):
            out.append(text)
    return out


def _values(m: re.Match[str], extra: re.Match[str] | None) -> dict[str, str]:
    values = {str(i): (g or "") for i, g in enumerate(m.groups(), start=1)}
    values["0"] = m.group(0)
    for match in (m, extra):
        if match is not None:
            values.update({k: v or "" for k, v in match.groupdict().items()})
    return values


def _choose(
    idx: int, texts: list[str], tab: Table
) -> tuple[Pattern, re.Match[str], dict[str, str]]:
    """From the pattern that claimed the line on, the first whose start and require hold."""
    joined = "\n".join(texts) + "\n"
    first: tuple[Pattern, re.Match[str], dict[str, str]] | None = None
    for pat in tab.patterns[idx:]:
        m = pat.start.search(texts[0])
        if m is None:
            continue
        extra = pat.require.search(joined) if pat.require is not None else None
        found = (pat, m, _values(m, extra))
        if pat.require is None or extra is not None:
            return found
        first = first or found
    assert first is not None  # the claiming pattern matches the line
    return first


def clean_title(title: str, tab: Table) -> str:
    """syzkaller's title hygiene (pkg/report's sanitizeTitle): run-specific parts replaced;
    of the first 120 bytes, tabs made spaces, every byte outside printable ASCII dropped (a
    fuzzer's task name of random bytes), runs of spaces made one."""
    for regex, repl in tab.replace:
        for _ in range(10):
            new = regex.sub(repl, title)
            if new == title:
                break
            title = new
    head = title.encode("utf-8", errors="replace")[:_MAX_TITLE].decode("ascii", errors="ignore")
    head = re.sub(r"[\x00-\x1f\x7f]", "", head.replace("\t", " "))
    return re.sub(r" {2,}", " ", head).strip()


def _report(
    lines: list[_Line], first: int, idx: int, body: list[int], tab: Table, before: str
) -> Report:
    texts = [lines[i].text for i in body]
    whole = _title_lines(_plain_text(lines, _extent(lines, first, tab, True), tab), tab)
    pat, _m, values = _choose(idx, whole, tab)
    func = culprit(pat, whole, tab.frames) if pat.stack else None
    values["func"] = func or "corrupted"
    title = _PLACEHOLDER.sub(lambda x: values.get(x.group(1), ""), pat.title)
    return Report(pat.kind, clean_title(title, tab), "\n".join(texts), first + 1, func, before)


def _before(lines: list[_Line], first: int, taken: set[int], tab: Table) -> str:
    """The lines of the report's context just before its first line: none of another report,
    none before an earlier report's end, no unreliable frame."""
    ctx = lines[first].context
    if ctx == FOREIGN:
        return ""
    most = _BEFORE_TASK if ctx.startswith("T") else _BEFORE
    out: list[str] = []
    j = first - 1
    while j >= 0 and len(out) < most and j not in taken:
        line = lines[j]
        j -= 1
        # util-linux dmesg indents a multi-line record's later lines, without a timestamp
        continued = ctx == "console" and line.context == "" and line.text.startswith(" ")
        if (line.context != ctx and not continued) or not line.text.strip():
            continue
        if tab.console.end.search(line.text):
            break
        if line.context and tab.console.questionable.search(line.text):
            continue
        if line.text.startswith(_LAB_LINE):  # the lab's own marks (console sync, module load)
            continue
        out.append(line.text.strip() if continued else line.text)
    return "\n".join(reversed(out))


def could_start_report(text: str) -> bool:
    """Whether a line of text could start a report (the table's quick filter on each line
    without its prefix): False is certain, True means find_reports has to look."""
    tab = table()
    return any(
        tab.any_start.search(line.text) for line in _split(text, tab) if line.context != FOREIGN
    )


def find_reports(text: str, after_boot: bool = False) -> list[Report]:
    """Every kernel report in a console log, in the order they start.  after_boot: the log
    starts after the kernel booted (a live console since a mark, syzkaller's logs), so a
    "Booting the kernel" anywhere in it is a reboot; otherwise only one after kernel output."""
    tab = table()
    lines = _split(text, tab)
    reports: list[Report] = []
    taken: set[int] = set()
    booted = after_boot
    for i, line in enumerate(lines):
        if i in taken:
            continue
        if line.context == FOREIGN:
            continue
        hit = _start(line.text, tab, booted)
        booted = booted or line.context != ""
        if hit is None:
            continue
        hit = _split_record(lines, i, hit, tab)
        body = _extent(lines, i, tab, False)
        before = _before(lines, i, taken, tab)
        taken.update(body)
        reports.append(_report(lines, i, hit[0], body, tab, before))
    return reports
