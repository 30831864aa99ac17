"""Kernel reports as users paste them from real machines, not syzkaller's corpus: host loggers'
prefixes (syslog in any language, journalctl's formats, OpenWrt's logread, svlogd, /dev/kmsg
records), quoted pastes, a hypervisor's tag, frames decoded by decode_stacktrace.sh, s390, bare
kmemleak records, and other programs' lines in the same log, which never start a report."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.crash import decode_log, find_reports, strip_header

REAL = Path(__file__).resolve().parents[1] / "data" / "crashlogs" / "real"
GOLDEN = REAL.parent


@pytest.mark.parametrize("log", sorted(REAL.glob("*.log")), ids=lambda p: p.name)
def test_a_real_paste_gets_its_title(log: Path) -> None:
    title, body = strip_header(decode_log(log.read_bytes()))
    assert title is not None
    reports = find_reports(body)
    assert reports, f"no report found in {log.name}"
    assert reports[0].title == title


@pytest.mark.parametrize("log", sorted((REAL / "nocrash").glob("*.log")), ids=lambda p: p.name)
def test_a_real_log_without_a_crash_reports_none(log: Path) -> None:
    """A user-space program's "WARNING:" in syslog, a segfault with its Code: line, an MCE."""
    _title, body = strip_header(decode_log(log.read_bytes()))
    assert find_reports(body) == []


TS = re.compile(r"^\[\s*(\d+)\.(\d+)\] ?(.*)$")

# Each shape turns one printk line (seconds, fraction, message) into a host logger's line.
SHAPES: dict[str, Callable[[int, str, str], str]] = {
    "syslog": lambda s, f, m: f"Nov 29 19:{s // 60 % 60:02d}:{s % 60:02d} build01 kernel: {m}",
    "syslog-no-host": lambda s, f, m: f"Nov  9 19:00:{s % 60:02d} kernel: {m}",
    "syslog-localized": lambda s, f, m: f"sept. 29 19:00:{s % 60:02d} hôte kernel: {m}",
    "syslog-precise": lambda s, f, m: f"Mär 29 19:00:{s % 60:02d}.{f} host kernel: [{s}.{f}] {m}",
    "journal-iso": lambda s, f, m: f"2026-11-29T19:00:{s % 60:02d}+0100 host kernel: {m}",
    "journal-precise": lambda s, f, m: f"2026-11-29 19:00:{s % 60:02d}.{f} host kernel: {m}",
    "journal-monotonic": lambda s, f, m: f"[{s:5d}.{f}] host kernel: {m}",
    "logread": lambda s, f, m: (
        f"Sun Nov 29 19:00:{s % 60:02d} 2026 kern.warn kernel: [{s}.{f}] {m}"
    ),
    "svlogd": lambda s, f, m: f"2026-11-29T19:00:{s % 60:02d}.{f} kern.err: {m}",
    "kmsg": lambda s, f, m: f"4,{s},{s}{f},-;{m}",
    "quoted": lambda s, f, m: f"> [{s:5d}.{f}] {m}",
    "hypervisor-tag": lambda s, f, m: f"[guest0/uart0] [{s:5d}.{f}] {m}",
    "pstore": lambda s, f, m: f"<4>[{s:5d}.{f}] {m}",
}
# Other programs' lines, interleaved: crash-like words a report must neither start on nor take.
FOREIGN = [
    "Nov 29 19:00:01 build01 openvpn[812]: WARNING: this configuration may cache passwords",
    "2026-11-29T19:00:01+0100 host systemd[1]: BUG: unit foo.service failed (Call Trace: none)",
    "sept. 29 19:00:01 hôte gdm-x-session[901]: general protection fault in Xorg",
]


def _rewrap(text: str, shape: Callable[[int, str, str], str]) -> str:
    out = []
    for n, line in enumerate(text.splitlines()):
        m = TS.match(line)
        out.append(shape(int(m.group(1)), m.group(2), m.group(3)) if m else line)
        if n % 7 == 3:
            out.append(FOREIGN[n % len(FOREIGN)])
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    "name", ["111.log", "117.log", "190.log", "21.log", "322.log", "591.log", "9.log"]
)
def test_a_host_loggers_shape_keeps_the_title(shape: str, name: str) -> None:
    """Real reports (golden logs) re-wrapped the way each host logger writes them, with other
    programs' lines between: the same titles as the console's own text."""
    title, body = strip_header((GOLDEN / name).read_text())
    want = [r.title for r in find_reports(body, after_boot=True)]
    assert want and want[0] == title
    got = find_reports(_rewrap(body, SHAPES[shape]), after_boot=True)
    assert [r.title for r in got] == want
    assert not any("openvpn" in r.text or "systemd[1]" in r.text for r in got)


@pytest.mark.parametrize(
    ("log", "title"),
    [
        (  # s390's die line (arch/s390/kernel/dumpstack.c: "%s: %04x ilc:%d [#%d]")
            "Low-address protection: 0004 ilc:3 [#1] SMP\n"
            "Krnl PSW : 0704c00180000000 000000000043a1b2 (vmr_mmap+0x32/0x80 [vmrmap])\n"
            "Call Trace:\n [<000000000043a1b2>] vmr_mmap+0x32/0x80 [vmrmap]\n",
            "Low-address protection in vmr_mmap",
        ),
        (  # x86 __die_header() for a reason the table has no row of its own
            "[    5.1] Bad pagetable: 000e [#1] PREEMPT SMP NOPTI\n"
            "[    5.2] RIP: 0010:fm_fault+0x41/0x90 [faultmap]\n",
            "Bad pagetable in fm_fault",
        ),
    ],
)
def test_any_die_line_is_an_oops(log: str, title: str) -> None:
    """An oops whose reason the table has no row for is still a report, by its die line."""
    (report,) = find_reports(log)
    assert (report.kind, report.title) == ("BUG", title)


def test_a_kmemleak_dump_is_one_report_per_leak() -> None:
    """/sys/kernel/debug/kmemleak lists every leak bare, one record each (mm/kmemleak.c
    print_unreferenced); syzkaller's heading "BUG: memory leak" keeps its one record."""
    record = (
        "unreferenced object 0xffff888004a1c{n} (size 64):\n"
        '  comm "insmod", pid 131, jiffies 4294902{n} (age 12.340s)\n'
        "  hex dump (first 32 bytes):\n"
        "    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................\n"
        "  backtrace:\n"
        "    [<ffffffff8123abcd>] kmalloc_trace+0x26/0x60\n"
        "    [<ffffffffc0002{n}>] {f}+0x2c/0x98 [mydrv]\n"
        "    [<ffffffff81001234>] do_one_initcall+0x41/0x200\n"
    )
    dump = record.format(n=100, f="mydrv_open") + record.format(n=200, f="mydrv_ioctl")
    assert [r.title for r in find_reports(dump)] == [
        "memory leak in mydrv_open",
        "memory leak in mydrv_ioctl",
    ]
    headed = "BUG: memory leak\n" + record.format(n=100, f="mydrv_open")
    assert [r.title for r in find_reports(headed)] == ["memory leak in mydrv_open"]


def test_another_programs_line_in_a_monotonic_journal_is_not_the_kernels() -> None:
    """journalctl -o short-monotonic: '[ seconds] host prog[pid]: ' is another program's line."""
    log = (
        "[  100.000001] host kernel: WARNING: CPU: 1 PID: 42 at mm/memory.c:123 "
        "zap_pte_range+0x1/0x2\n"
        "[  100.000003] host openvpn[812]: WARNING: this configuration may cache passwords\n"
        "[  100.000004] host kernel: RIP: 0010:zap_pte_range+0x1/0x2\n"
        "[  100.000005] host sshd[9]: Accepted publickey for root\n"
    )
    (report,) = find_reports(log)
    assert report.title == "WARNING in zap_pte_range"
    assert "openvpn" not in report.text and "sshd" not in report.text


@pytest.mark.parametrize(
    "line", ["Result: 0000 [#1] ok", "progress: 1234 [#5]", "CHECK(x): deadbeef [#3]"]
)
def test_a_programs_line_shaped_like_a_die_line_is_none(line: str) -> None:
    """Only the kernel's flags may follow "[#N]" (PREEMPT, SMP, KASAN, PTI, ...)."""
    assert find_reports(f"[    5.1] {line}\n") == []
