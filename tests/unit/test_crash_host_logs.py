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
    # util-linux dmesg: --time-format=iso (a comma before the fraction, no host, no "kernel:"),
    # --decode (facility and level first), --decode --ctime
    "dmesg-iso": lambda s, f, m: f"2026-11-29T19:00:{s % 60:02d},{f}+01:00 {m}",
    "dmesg-decode": lambda s, f, m: f"kern  :warn  : [{s:5d}.{f}] {m}",
    "dmesg-decode-ctime": lambda s, f, m: (
        f"kern  :err   : [Sun Nov 29 19:00:{s % 60:02d} 2026] {m}"
    ),
}
# Other programs' lines, interleaved: crash-like words a report must neither start on nor take.
FOREIGN = [
    "Nov 29 19:00:01 build01 openvpn[812]: WARNING: this configuration may cache passwords",
    "2026-11-29T19:00:01+0100 host systemd[1]: BUG: unit foo.service failed (Call Trace: none)",
    "sept. 29 19:00:01 hôte gdm-x-session[901]: general protection fault in Xorg",
    "2026-11-29T19:00:01+0100 host kernel-install[733]: BUG: no initrd (WARNING: skipped)",
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
    assert not any(w in r.text for r in got for w in ("openvpn", "systemd[1]", "kernel-install"))


def test_util_linux_dmesg_of_a_printk_caller_kernel_keeps_the_contexts() -> None:
    """util-linux dmesg (2.40+) prints the caller after the timestamp with a space between
    ("[   412.000001] [  T4242] "): the report still takes its own task's lines only."""
    log = (
        "[  412.000001] [  T4242] BUG: Bad page state in process mmtest  pfn:10b4e1\n"
        "[  412.000002] [  T4242] page dumped because: nonzero mapcount\n"
        "[  412.000003] [   T517] mmtest-helper: region 3 idle\n"
        "[  412.000004] [  T4242] Call Trace:\n"
        "[  412.000005] [  T4242]  <TASK>\n"
        "[  412.000006] [  T4242]  dump_stack_lvl+0x44/0x5c\n"
        "[  412.000007] [  T4242]  bad_page+0x6b/0x100\n"
        "[  412.000008] [  T4242]  __free_frozen_pages+0x3a4/0x4c0\n"
        "[  412.000009] [   T517] mmtest-helper: region 4 idle\n"
        "[  412.000010] [  T4242]  multimap_release+0x6b/0xd0 [multimap]\n"
        "[  412.000011] [  T4242]  </TASK>\n"
    )
    (report,) = find_reports(log)
    assert report.title == "BUG: Bad page state in multimap_release"
    assert "mmtest-helper" not in report.text


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


def test_the_lines_leading_to_a_report_are_kept_apart_from_it() -> None:
    """dump_page() / dump_vma() print what a VM_BUG_ON is about before its "kernel BUG at"
    (syzkaller keeps 5 lines before a report, 50 of a task's own): kept as the report's
    `before`, never its title or text; util-linux dmesg's indented lines of one record too."""
    _t, body = strip_header(decode_log((REAL / "vm-bug-on-page-dump-before.log").read_bytes()))
    (report,) = find_reports(body)
    assert report.text.startswith("kernel BUG at mm/internal.h:96!")
    before = report.before.splitlines()
    assert len(before) == 5 and before[0].startswith("page:(____ptrval____) refcount:1 mapcount:0")
    assert "page dumped because: VM_BUG_ON_PAGE(page_ref_count(page))" in report.before
    _t, body = strip_header(decode_log((REAL / "driver-mmap-vm-bug-on-vma-dmesg.log").read_bytes()))
    (report,) = find_reports(body)
    assert report.before.splitlines()[:4] == [
        "vma ffff88813b44e8a0 start 00007faed3601000 end 00007faed3608000 mm ffff8881121b3180",
        "prot 8000000000000025 anon_vma 0000000000000000 vm_ops ffffffff8e24aac0",
        "pgoff 100 file ffff888269f99900 private_data 0000000000000000",
        "flags: 0xb9(read|shared|mayread|maywrite|mayshare)",
    ]


def test_lines_before_a_report_stop_at_the_previous_one() -> None:
    """Nothing of an earlier report (nor of its end marker) is another report's `before`; a
    task's own lines ([T123]) are followed further back, other tasks' not at all."""
    log = "\n".join(
        [
            "[    1.000000][  T100] BUG: Bad rss-counter state mm:0000 type:MM_FILEPAGES val:-3",
            "[    1.000001][  T100] ---[ end trace 0000000000000000 ]---",
            *(f"[    1.1000{i:02d}][  T200] mydrv: step {i}" for i in range(8)),
            "[    1.200000][  T300] unrelated: another task",
            "[    1.300000][  T200] ------------[ cut here ]------------",
            "[    1.300001][  T200] kernel BUG at mm/memory.c:2482!",
            "[    1.300002][  T200] invalid opcode: 0000 [#1] PREEMPT SMP",
        ]
    )
    first, second = find_reports(log)
    assert first.before == ""
    assert second.before.splitlines() == [
        *(f"mydrv: step {i}" for i in range(8)),
        "------------[ cut here ]------------",
    ]


def test_an_iso_dated_line_of_another_program_is_foreign() -> None:
    """util-linux dmesg --time-format=iso has no host; a logger's ISO-dated line with a host
    and `prog[pid]: ` is another program's, whatever its message says."""
    log = "\n".join(
        [
            "2024-05-01T10:00:00,123456+02:00 myhost myprog[12]: BUG: unable to handle page "
            "fault for address: 0000",
            "2024-05-01T10:00:02,000000+02:00 myhost kernel-install[55]: WARNING: CPU: 0 PID: 1 "
            "at x.c:1 f+0x1/0x2",
        ]
    )
    assert find_reports(log) == []
    kernel = "2024-05-01T10:00:03,000000+02:00 BUG: KASAN: slab-out-of-bounds in f+0x1/0x2"
    (report,) = find_reports(kernel)
    assert report.kind == "KASAN"
