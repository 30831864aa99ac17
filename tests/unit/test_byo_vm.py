"""remaplab boot's own-code options without a VM: argv quoting, --share checks and QEMU devices,
the working folder, and the kernel watch that ends a command when the guest crashes."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from lab.commands.vm import guest_command, guest_cwd, share_dirs
from lab.crash import Report
from lab.errors import LabError
from lab.profiles import get_profile
from lab.qemu import QemuSpec, build_argv, cmdline
from lab.watch import GUEST_DIED, KernelWatch, step_interrupt


def test_one_word_is_a_command_line_more_are_an_argv() -> None:
    assert guest_command(["echo a && echo b"]) == "echo a && echo b"
    line = guest_command(["sh", "-c", "echo a && echo b"])
    assert shlex.split(line) == ["sh", "-c", "echo a && echo b"]
    assert shlex.split(guest_command(["printf", "%s\\n", "it's", ""])) == [
        "printf",
        "%s\\n",
        "it's",
        "",
    ]


def test_shares_are_absolute_resolved_deduplicated_parents_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    monkeypatch.chdir(tmp_path / "a")
    shares = share_dirs(["b", ".", str(tmp_path / "link")])
    assert shares == (tmp_path / "a", tmp_path / "a" / "b")
    assert guest_cwd(shares) == str(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    assert guest_cwd(shares) is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("/", "would hide the guest's /bin"),
        ("/root", "would hide the guest's /root/.ssh"),
        ("/etc", "would hide the guest's /etc"),
        ("/proc/self", "host pseudo-filesystem"),
        ("/nonexistent-share", "not a folder"),
    ],
)
def test_shares_the_guest_cannot_take_are_refused(value: str, why: str) -> None:
    with pytest.raises(LabError, match=why):
        share_dirs([value])


def test_share_with_white_space_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a b").mkdir()
    with pytest.raises(LabError, match="white space"):
        share_dirs([str(tmp_path / "a b")])


def test_share_devices_and_kernel_parameters() -> None:
    spec = QemuSpec(
        profile=get_profile("arm64"),
        image=Path("/k/Image"),
        initrd=Path("/k/initrd"),
        accel="tcg",
        shares=(Path("/home/u/proj"), Path("/data/x,y")),
        append=("user=1",),
    )
    argv = build_argv(spec)
    fsdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-fsdev"]
    assert fsdevs == [
        "local,id=share0,path=/home/u/proj,security_model=none,multidevs=remap",
        "local,id=share1,path=/data/x,,y,security_model=none,multidevs=remap",
    ]
    assert f"{spec.profile.fs_device},fsdev=share1,mount_tag=share1" in argv
    words = cmdline(spec).split()
    assert words[-3:] == ["remaplab.share0=/home/u/proj", "remaplab.share1=/data/x,y", "user=1"]


class FakeConsole:
    """The parts of lab.console.Console the watch uses, driven by the test."""

    def __init__(self) -> None:
        self.buf = "remaplab: ready 6.1\n"
        self.eof = False
        self.last_output = time.monotonic()

    def say(self, text: str, ago: float = 0.0) -> None:
        self.buf += text
        self.last_output = time.monotonic() - ago

    def text(self, start: int = 0) -> str:
        return self.buf[start:]

    def wait_quiet(self, quiet: float, limit: float) -> bool:
        return True

    def last_line(self) -> str:
        return self.buf.splitlines()[-1]


WARNING = """\
------------[ cut here ]------------
WARNING: CPU: 0 PID: 1 at lib/refcount.c:28 refcount_warn_saturate+0xba/0x110
Call Trace:
 <TASK>
 vma_close+0x20/0x40
 __x64_sys_munmap+0x17/0x20
 </TASK>
---[ end trace 0000000000000000 ]---
"""


def test_watch_stops_a_command_once_a_report_is_complete() -> None:
    console = FakeConsole()
    watch = KernelWatch(console, len(console.buf), quiet=0.5, limit=5.0)  # type: ignore[arg-type]
    assert watch.stop_reason() is None
    console.say(WARNING)  # just printed: may still be printing
    assert watch.stop_reason() is None
    console.last_output -= 0.6  # and then silence for longer than the quiet window
    assert watch.stop_reason() == "kernel report [REFCOUNT] WARNING: refcount bug in vma_close"
    assert [r.kind for r in watch.new_reports()] == ["REFCOUNT"]
    assert watch.new_reports() == []  # each report handed out once


def test_watch_reports_nothing_before_its_mark_and_stops_when_the_guest_dies() -> None:
    console = FakeConsole()
    console.say(WARNING, ago=10.0)  # before the command started
    watch = KernelWatch(console, len(console.buf))  # type: ignore[arg-type]
    assert watch.stop_reason() is None and watch.settle() == []
    console.eof = True
    assert watch.stop_reason() == GUEST_DIED


def test_bad_share_is_one_line_and_125_before_any_boot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lab.cli import EXIT_LAB, main

    code = main(["boot", "--arch", "x86_64", "--share", str(tmp_path / "nope"), "--", "true"])
    err = capsys.readouterr().err
    assert code == EXIT_LAB
    assert err.strip() == f"remaplab: --share {tmp_path / 'nope'}: not a folder"


def test_a_scenario_command_stops_at_an_unexpected_report_at_once() -> None:
    """A scenario's guest commands (VM.watch): an oops whose task held the mmap lock would keep
    the command from ever returning; the complete report ends the wait instead."""
    console = FakeConsole()
    watch = KernelWatch(console, len(console.buf), quiet=0.5)  # type: ignore[arg-type]
    interrupt = step_interrupt(watch, lambda reports: False)
    assert interrupt() is None
    console.say(WARNING, ago=1.0)
    assert interrupt() == "kernel report [REFCOUNT] WARNING: refcount bug in vma_close"
    console.eof = True
    assert interrupt() == GUEST_DIED


def test_an_expected_report_stops_nothing_but_the_guest_dying_does() -> None:
    console = FakeConsole()
    watch = KernelWatch(console, len(console.buf), quiet=0.5)  # type: ignore[arg-type]
    console.say(WARNING, ago=1.0)
    seen: list[list[str]] = []

    def expected(reports: list[Report]) -> bool:
        seen.append([r.kind for r in reports])
        return True

    interrupt = step_interrupt(watch, expected)
    assert interrupt() is None  # the scenario goes on after the WARNING it expects
    assert seen == [["REFCOUNT"]]
    console.eof = True
    assert interrupt() == GUEST_DIED


def test_a_chatty_console_is_not_parsed_whole_at_every_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Until a line could start a report, the watch reads only new lines with the table's
    quick filter; the whole text is parsed once one could, and the report is found."""
    import lab.watch

    parsed: list[int] = []
    real = lab.watch.find_reports

    def counting(text: str, after_boot: bool = False) -> list[Report]:
        parsed.append(len(text))
        return real(text, after_boot)

    monkeypatch.setattr(lab.watch, "find_reports", counting)
    console = FakeConsole()
    watch = KernelWatch(console, len(console.buf), quiet=0.5)  # type: ignore[arg-type]
    for i in range(50):
        console.say(f"[ {i}.000000] mydrv: chatty line {i}\n", ago=1.0)
        assert watch.stop_reason() is None
    assert parsed == []
    # passes the quick filter, yet is a user program's trap, which starts no report
    trap = (
        "traps: a.out[9] general protection fault ip:4011d6 sp:7ffd error:0 in a.out[401000+1000]"
    )
    console.say(f"[ 60.000000] {trap}\n", ago=1.0)
    assert watch.stop_reason() is None and len(parsed) == 1  # looked at once, then passed by
    console.say("[ 61.000000] mydrv: one more\n", ago=1.0)
    assert watch.stop_reason() is None and len(parsed) == 1
    console.say(WARNING, ago=1.0)
    assert watch.stop_reason() == "kernel report [REFCOUNT] WARNING: refcount bug in vma_close"
