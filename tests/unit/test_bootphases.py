"""Where a boot's seconds go: the host's clock and the guest's kernel log joined, on kernel logs
recorded from real boots of the lab's guests (Debian 6.1, TCG)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.bootphases import BEFORE_CLOCK, KERNEL, guest_marks, medians, phases

DATA = Path(__file__).parent / "data" / "boot-dmesg"


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_a_real_boot_log_gives_every_milestone_in_order(arch: str) -> None:
    marks = guest_marks((DATA / f"{arch}.txt").read_text())
    names = [name for name, _ in marks]
    assert names == ["/init", "mounted", "boot-modules", "network", "9p", "dropbear"]
    times = [t for _, t in marks]
    assert times == sorted(times) and times[0] > 0.3


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_phases_add_up_to_the_host_total(arch: str) -> None:
    dmesg = (DATA / f"{arch}.txt").read_text()
    ready_at = guest_marks(dmesg)[-1][1]
    split = phases(
        dmesg,
        ready_s=ready_at + 0.4,
        boot_s=ready_at + 0.55,
        command_s=0.01,
        total_s=ready_at + 0.59,
    )
    assert split["host setup"] == pytest.approx(0.03)
    assert split[BEFORE_CLOCK] == pytest.approx(0.4)
    assert split[KERNEL] == pytest.approx(guest_marks(dmesg)[0][1], abs=0.001)
    assert split["ssh connect"] == pytest.approx(0.15)
    assert split["first command"] == pytest.approx(0.01)
    assert sum(split.values()) == pytest.approx(ready_at + 0.59, abs=0.005)
    assert list(split)[3] == "/init -> mounted"


def test_a_log_without_run_init_gives_the_host_phases_only() -> None:
    dmesg = "[    0.000000] Linux version 6.1.0\n[    2.100000] remaplab: at dropbear\n"
    split = phases(dmesg, ready_s=2.5, boot_s=2.7, command_s=0.05, total_s=2.77)
    assert split == {
        "host setup": 0.02,
        "spawn -> ready line": 2.5,
        "ssh connect": 0.2,
        "first command": 0.05,
    }


def test_milestones_are_read_only_from_the_lab_s_own_lines() -> None:
    dmesg = (
        "[    1.000000] Run /init as init process\n"
        "[    1.100000] remaplab: at mounted\n"
        "[    1.150000] foo: remaplab: at fake\n"  # another program's text
        "[    1.200000] remaplab: at dropbear\n"
    )
    assert [n for n, _ in guest_marks(dmesg)] == ["/init", "mounted", "dropbear"]


def test_medians_keep_phases_some_runs_lack() -> None:
    runs = [{"a": 1.0, "b": 2.0}, {"a": 3.0}, {"a": 2.0, "c": 5.0}]
    assert medians(runs) == {"a": 2.0, "b": 2.0, "c": 5.0}
    assert list(medians(runs)) == ["a", "b", "c"]
