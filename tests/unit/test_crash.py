"""Crash detection: a golden real log per pattern family, the derived logs (one family each,
in several console shapes), a corpus-wide measurement, and the no-crash logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.crash import decode_log, find_reports, patterns, strip_header

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "crashlogs"
DERIVED = GOLDEN / "derived"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "crashlogs"


@pytest.mark.parametrize("log", sorted(GOLDEN.glob("*.log")), ids=lambda p: p.name)
def test_golden_title(log: Path) -> None:
    text = log.read_text(errors="replace")
    title, body = strip_header(text)
    assert title is not None
    reports = find_reports(body, after_boot=True)  # syzkaller's logs start after the boot
    assert reports, f"no report found in {log.name}"
    assert reports[0].title == title
    assert reports[0].text.strip()


@pytest.mark.parametrize("log", sorted((GOLDEN / "nocrash").glob("*.log")), ids=lambda p: p.name)
def test_golden_no_crash(log: Path) -> None:
    """Real logs syzkaller finds no crash in (kernel warnings that are no bug: eBPF and
    Spectre notices, ...): no report either."""
    title, body = strip_header(decode_log(log.read_bytes()))
    assert title is None
    assert find_reports(body, after_boot=True) == []


@pytest.mark.parametrize("log", sorted(DERIVED.glob("*.log")), ids=lambda p: p.name)
def test_derived_title(log: Path) -> None:
    """Every derived log: its title exactly, or no report at all when it has no header."""
    title, body = strip_header(decode_log(log.read_bytes()))
    reports = find_reports(body)
    if title is None:
        assert reports == [], [r.title for r in reports]
    else:
        assert reports and reports[0].title == title


def test_derived_set_covers_every_shape() -> None:
    shapes = {p.stem.rsplit("-", 1)[1] for p in DERIVED.glob("*.log")}
    assert shapes == {"bare", "ts", "caller", "binary"}
    assert len(list(DERIVED.glob("*.log"))) >= 150


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


def test_first_boot_is_no_reboot() -> None:
    """ "Booting the kernel." before any kernel output is the boot itself, not a reboot."""
    boot = (
        "Decompressing Linux... Parsing ELF... done.\nBooting the kernel.\n[    0.000000] Linux\n"
    )
    assert find_reports(boot) == []
    (again,) = find_reports(boot + "Booting the kernel.\n")
    assert again.title == "unexpected kernel reboot"


def test_user_space_faults_are_no_crash() -> None:
    log = (
        "[   51.1] traps: a.out[311] general protection fault ip:7f3a12b4c2d1 sp:7ffd9a1c2e80 "
        "error:0 in libc.so.6[7f3a12b25000+155000]\n"
        "[   51.2] a.out[312]: segfault at 8 ip 000055d2c4a1b2c3 sp 00007ffd9a1c2e80 error 4 in "
        "a.out[55d2c4a00000+2b000]\n"
    )
    assert find_reports(log) == []


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


def test_nul_bytes_and_bad_utf8_are_tolerated() -> None:
    raw = (
        b"\0\0boot\xff\xfe noise\r\n[   10.1] WARNING: CPU: 1 PID: 42 at mm/memory.c:123 "
        b"zap_pte_range+0x1/0x2\r\n[   10.2] RIP: 0010:zap_\0pte_range+0x1/0x2\r\n\0\0\0"
    )
    text = decode_log(raw)
    assert "\0" not in text and "\ufffd" in text
    (report,) = find_reports(text)
    assert report.title == "WARNING in zap_pte_range"
    # find_reports drops NULs itself too, for callers that decode on their own
    assert find_reports(raw.decode("latin-1"))[0].title == "WARNING in zap_pte_range"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", b"\xff\xfe"),  # PowerShell's `>`
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),
        ("utf-16-be", b""),
        ("utf-8", b"\xef\xbb\xbf"),  # Notepad
    ],
)
def test_a_log_saved_by_another_tool_reads_as_its_encoding(encoding: str, bom: bytes) -> None:
    """A real log re-encoded: the same reports, the header still a header (read as UTF-8, a
    UTF-16 BOM hid it and its TITLE line was taken for a report)."""
    log = GOLDEN / "1001.log"
    text = log.read_text()
    want = [(r.title, r.line) for r in find_reports(strip_header(text)[1], after_boot=True)]
    raw = bom + text.encode(encoding)
    title, body = strip_header(decode_log(raw))
    assert title == strip_header(text)[0]
    assert [(r.title, r.line) for r in find_reports(body, after_boot=True)] == want


def test_stray_bytes_on_a_serial_console_do_not_make_it_utf16() -> None:
    """FF FE and a few NULs at the start of a console (line noise before the firmware speaks)
    are no byte-order mark: the log stays UTF-8."""
    raw = (
        b"\xff\xfe\0\0\r\n[   10.1] WARNING: CPU: 1 PID: 42 at mm/memory.c:123 "
        b"zap_pte_range+0x1/0x2\r\n[   10.2] RIP: 0010:zap_pte_range+0x1/0x2\r\n"
    )
    text = decode_log(raw)
    assert "WARNING: CPU: 1 PID: 42" in text
    (report,) = find_reports(text)
    assert report.title == "WARNING in zap_pte_range"


def test_title_from_the_first_of_two_reports() -> None:
    log = (
        "BUG: KASAN: use-after-free in foo_read+0x1/0x2\nRead of size 8 at addr ffff8880 by "
        "task a/1\nCall Trace:\n foo_read+0x1/0x2\n"
        "general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000\n"
        "RIP: 0010:bar+0x1/0x2\n"
    )
    first, second = find_reports(log)
    assert first.title == "KASAN: use-after-free Read in foo_read"
    assert second.title == "general protection fault in bar"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/crashlogs not present")
def test_corpus_rates() -> None:
    crash = detected = titled = clean = false_pos = 0
    for log in sorted(CORPUS.glob("*.log")):
        title, body = strip_header(decode_log(log.read_bytes()))
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


HEADER_CASES = {
    "title": ("TITLE: A\nALT: b\n\nlog\n", ("A", "log\n")),
    "comments": ("# a note\n# another\nTITLE: A\nTYPE: BUG\n\nlog\n", ("A", "log\n")),
    "comments-only": ("# no crash here\n\nlog\n", (None, "log\n")),
    "report-section": ("TITLE: A\n\nlog\n\nREPORT:\ncut\n", ("A", "log")),
    "no-header": ("[ 1.0] x\n\ny\n", (None, "[ 1.0] x\n\ny\n")),
    "console-like-keys": (
        "WARNING: CPU: 0 PID: 1 at x\n\ny\n",
        (None, "WARNING: CPU: 0 PID: 1 at x\n\ny\n"),
    ),
    "empty": ("", (None, "")),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_strip_header_reads_syzkallers_test_format(case: str) -> None:
    text, want = HEADER_CASES[case]
    assert strip_header(text) == want


def test_a_boot_in_a_log_that_starts_after_boot_is_a_reboot() -> None:
    """syzkaller's logs and a live console since a mark start after the boot: a boot banner
    there, even after only a program's output and the firmware's, is a reboot."""
    log = "mmap(&(0x7f0000000000/0x1000)=nil)\nSeaBIOS (version 1.16)\nBooting the kernel.\n"
    assert find_reports(log) == []  # a log from power-on: its first boot
    (report,) = find_reports(log, after_boot=True)
    assert (report.kind, report.title) == ("REBOOT", "unexpected kernel reboot")


HUNG = (
    "[  52.080846][   T41] INFO: task ab\n"
    "[  52.080846][   T41] cd:18088 blocked for more than 143 seconds.\n"
    "[  52.101131][   T41] Call Trace:\n"
    "[  52.101131][   T41]  <TASK>\n"
    "[  52.101132][   T41]  __schedule+0x10/0x20\n"
    "[  52.101133][   T41]  schedule+0x10/0x20\n"
    "[  52.101134][   T41]  p9_fd_close+0x10/0x20\n"
    "[  52.101135][   T41]  </TASK>\n"
)


def test_a_first_line_cut_by_a_newline_in_one_printk_is_joined() -> None:
    """A task name holding a newline splits the hung-task line in two with one prefix: read
    joined, the specific pattern names it (not the catch-all 'INFO: ...')."""
    (report,) = find_reports(HUNG)
    assert report.title == "INFO: task hung in p9_fd_close", report.title
    assert report.line == 1


def test_lines_of_different_printks_are_not_joined() -> None:
    other = HUNG.replace("[  52.080846][   T41] cd:", "[  52.080847][   T41] cd:", 1)
    (report,) = find_reports(other)
    assert report.title != "INFO: task hung in p9_fd_close"


def test_a_line_before_a_replay_note_that_is_no_cut_copy_stays() -> None:
    log = (
        "[ 5.000001] WARNING: CPU: 0 PID: 1 at mm/memory.c:1 zap_pte_range+0x1/0x2\n"
        "** replaying previous printk message **\n"
        "[ 5.000002] RIP: 0010:zap_pte_range+0x1/0x2\n"
    )
    (report,) = find_reports(log)
    assert report.title == "WARNING in zap_pte_range"


HUNG_ON_RWSEM = """\
[  370.1][   T38] INFO: task mmtest:813 blocked for more than 122 seconds.
[  370.1][   T38] task:mmtest          state:D stack:0     pid:813   tgid:812   ppid:1
[  370.1][   T38] Call Trace:
[  370.1][   T38]  <TASK>
[  370.1][   T38]  __schedule+0x3a1/0xd20
[  370.1][   T38]  schedule+0x5d/0xe0
[  370.1][   T38]  rwsem_down_read_slowpath+0x2ac/0x510
[  370.1][   T38]  down_read_killable+0x8a/0x130
[  370.1][   T38]  lock_mm_and_find_vma+0x89/0x200
[  370.1][   T38]  do_user_addr_fault+0x1a8/0x690
[  370.1][   T38]  </TASK>
[  370.2][   T38] INFO: task mmtest:813 <reader> blocked on an rw-semaphore likely owned by \
task mmtest:812 <writer>
[  370.2][   T38] task:mmtest          state:D stack:0     pid:812   tgid:812   ppid:1
[  370.2][   T38] Call Trace:
[  370.2][   T38]  <TASK>
[  370.2][   T38]  __schedule+0x3a1/0xd20
[  370.2][   T38]  schedule+0x5d/0xe0
[  370.2][   T38]  multimap_wait_idle+0x41/0x70 [multimap]
[  370.2][   T38]  multimap_mmap+0x9c/0x260 [multimap]
[  370.2][   T38]  </TASK>
"""


def test_a_record_a_console_replays_is_read_once() -> None:
    """kernel/printk/nbcon.c: a console taking over another's printing mid-record prints a
    replay note, then the whole record again; the cut copy before the note starts no report
    (else "INFO: t" would be its title) and line numbers still count it."""
    first = "[  370.1][   T38] INFO: task mmtest:813 blocked for more than 122 seconds.\n"
    cut = HUNG_ON_RWSEM.replace(
        first, "[  370.1][   T38] INFO: t\n** replaying previous printk message **\n" + first, 1
    )
    assert cut != HUNG_ON_RWSEM
    (report,) = find_reports(cut)
    assert report.title == "INFO: task hung in lock_mm_and_find_vma"
    assert report.line == 3
    assert "INFO: t\n" not in report.text


@pytest.mark.parametrize(
    "blocker",
    [
        "INFO: task mmtest:813 <reader> blocked on an rw-semaphore likely owned by task"
        " mmtest:812 <writer>",
        "INFO: task mmtest:813 is blocked on a mutex likely owned by task mmtest:812.",
        "INFO: task mmtest:813 blocked on a semaphore likely last held by task mmtest:812",
        "INFO: task mmtest:813 is blocked on an rw-semaphore, but the owner is not found.",
    ],
)
def test_the_lock_owner_of_a_hung_task_is_part_of_its_report(blocker: str) -> None:
    """kernel/hung_task.c debug_show_blocker() prints the lock a hung task waits for and the
    owner's stack right after the task's own: one report, not a second one."""
    log = HUNG_ON_RWSEM.replace(
        "INFO: task mmtest:813 <reader> blocked on an rw-semaphore likely owned by task"
        " mmtest:812 <writer>",
        blocker,
    )
    (report,) = find_reports(log)
    assert (report.kind, report.title) == ("HANG", "INFO: task hung in lock_mm_and_find_vma")
    assert "multimap_mmap" in report.text


def test_titles_keep_printable_ascii_only() -> None:
    """As syzkaller's sanitizeTitle: a fuzzer's task name of random bytes leaves nothing."""
    log = "[ 1.0][ T1] INFO: task \u00e9\ufffd\x01x:12 blocked for more than 143 seconds.\n"
    (report,) = find_reports(log)
    assert report.title.isascii() and report.title.isprintable(), report.title


def test_ipv6_addresses_in_titles_and_what_is_no_address() -> None:
    from lab.crash.report import clean_title
    from lab.crash.table import table

    said = {t: clean_title(t, table()) for t in (
        "BUG: Address fc00:: on device lo", "x 2001:db8::1 y", "WARNING in <List<T>>::add",
        "WARNING in <T>::dec", "at 12:34:56",
    )}  # fmt: skip
    assert said["BUG: Address fc00:: on device lo"] == "BUG: Address IPV6ADDR on device lo"
    assert said["x 2001:db8::1 y"] == "x IPV6ADDR y"
    assert said["WARNING in <List<T>>::add"] == "WARNING in <List<T>>::add"
    assert said["WARNING in <T>::dec"] == "WARNING in <T>::dec"
    assert "IPV6ADDR" not in said["at 12:34:56"]


def test_triage_names_the_files_own_lines_past_a_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lab.cli import main

    log = tmp_path / "t.log"
    log.write_text(
        "# a note\nTITLE: x\n\nboot line\n"
        "[  1.0] WARNING: CPU: 0 PID: 1 at mm/memory.c:1 f+0x0/0x1\n"
    )
    assert main(["triage", str(log)]) == 0
    assert f"{log}:5: [WARNING]" in capsys.readouterr().out
