"""Where a silent guest's vCPUs are, from QEMU's `info registers -a` recorded on real guests
(Debian 6.1 kernels under TCG, this lab's argv)."""

from pathlib import Path

from lab.stall import capture, summary, where

DATA = Path(__file__).parent / "data" / "stall"


def test_x86_in_firmware_one_cpu_halted() -> None:
    # 0.25 s after QEMU started: the boot CPU in SeaBIOS, the other parked in HLT.
    cpus = where((DATA / "x86_64-firmware.txt").read_text())
    assert [(c.index, c.pc, c.place, c.halted) for c in cpus] == [
        (0, 0xEC1F0, "in the firmware or real-mode setup", False),
        (1, 0xFD09A, "in the firmware or real-mode setup", True),
    ]


def test_x86_in_the_kernel() -> None:
    cpus = where((DATA / "x86_64-kernel.txt").read_text())
    assert [(c.pc, c.place, c.halted) for c in cpus] == [
        (0xFFFFFFFF81075B8F, "in the kernel", False),
        (0xFFFFFFFF81A5A170, "in the kernel", False),
    ]


def test_arm64_early_and_secondary_not_started() -> None:
    cpus = where((DATA / "arm64-early.txt").read_text())
    assert [(c.pc, c.place.split(" (")[0], c.halted) for c in cpus] == [
        (0x41867D54, "in early boot", None),
        (0, "not started", None),
    ]


def test_arm64_in_the_kernel() -> None:
    cpus = where((DATA / "arm64-kernel.txt").read_text())
    assert [(c.pc, c.place) for c in cpus] == [
        (0xFFFFCCB1F24DA26C, "in the kernel"),
        (0xFFFFCCB1F1EFF530, "in the kernel"),
    ]


def test_user_space_by_privilege_not_address() -> None:
    text = (DATA / "x86_64-kernel.txt").read_text().replace("CPL=0", "CPL=3", 1)
    arm = (DATA / "arm64-kernel.txt").read_text().replace("EL1h", "EL0t", 1)
    assert where(text)[0].place == "in user space"
    assert where(arm)[0].place == "in user space"


def test_summary_line() -> None:
    cpus = where((DATA / "x86_64-firmware.txt").read_text())
    assert summary("running", cpus) == (
        "QEMU running; vCPU0 running in the firmware or real-mode setup, pc 0xec1f0; "
        "vCPU1 halted in the firmware or real-mode setup, pc 0xfd09a"
    )
    early = summary("running", where((DATA / "arm64-early.txt").read_text()))
    assert early == (
        "QEMU running; vCPU0 in early boot (MMU off), pc 0x41867d54; vCPU1 not started "
        "(a secondary CPU before PSCI CPU_ON sits at PC 0), pc 0x0"
    )
    assert summary("prelaunch", []) == "QEMU prelaunch; no vCPU state"
    assert where("garbage\nno cpus here\n") == []


class _Qmp:
    def __init__(self, registers: str, fail: bool = False) -> None:
        self.registers, self.fail = registers, fail

    def cmd(self, name: str, **args: object) -> object:
        if self.fail:
            raise ConnectionResetError("socket closed")
        if name == "query-status":
            return {"status": "running", "running": True}
        assert args == {"command-line": "info registers -a"}
        return self.registers


def test_capture_summarises_and_keeps_the_registers() -> None:
    line, text = capture(_Qmp((DATA / "arm64-kernel.txt").read_text()))
    assert line.startswith("QEMU running; vCPU0 in the kernel, pc 0xffffccb1f24da26c")
    assert "query-status: {'status': 'running'" in text and "PSTATE=400000c5" in text
    assert capture(_Qmp("", fail=True)) == ("QEMU did not answer on QMP: socket closed", "")


def test_capture_at_is_bounded_when_qemu_never_greets(tmp_path: Path) -> None:
    import socket

    from lab.stall import capture_at

    path = tmp_path / "qmp.sock"
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(str(path))
    mute.listen(1)  # accepts at the kernel level, never says a word: a wedged main loop
    try:
        out = tmp_path / "stall.txt"
        line = capture_at(path, out, timeout=0.5)
        assert line == "QEMU did not answer on QMP within 0.5 s"
        assert out.read_text() == line + "\n"
    finally:
        mute.close()
    missing = capture_at(tmp_path / "none.sock", tmp_path / "s2.txt", timeout=2.0)
    assert missing.startswith("QEMU did not answer on QMP: ")


def test_process_names_program_state_and_wait(tmp_path: Path) -> None:
    import os
    import subprocess

    from lab.stall import process

    # A real child stopped by SIGSTOP (the state a QEMU in the background of a terminal is in).
    child = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(child.pid, 19)  # SIGSTOP
        deadline = 50
        while "state T" not in (said := process(child.pid)) and deadline:
            deadline -= 1
            os.sched_yield()
        assert said.startswith(f"process {child.pid}: sleep, state T"), said
    finally:
        child.kill()
        child.wait()
    assert process(child.pid) == f"process {child.pid}: gone (No such file or directory)"
    # A recorded /proc entry of a child that never exec'd QEMU: still python, sleeping on a lock.
    fake = tmp_path / "123"
    fake.mkdir()
    os.symlink("/usr/bin/python3.11", fake / "exe")
    (fake / "stat").write_text("123 (python3) S 1 123 123 0 -1 4194560 0 0 0 0\n")
    (fake / "wchan").write_text("futex_wait_queue")
    assert process(123, tmp_path) == "process 123: python3.11, state S, waiting in futex_wait_queue"
