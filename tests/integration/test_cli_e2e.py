"""The CLI end to end, and the no-orphan guarantees, with real QEMU processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REMAPLAB = [sys.executable, "-m", "lab.cli"]


def qemu_pids(owner: int) -> list[int]:
    """QEMU processes started by the remaplab process with pid owner (named by the lab)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and os.path.basename(argv[0]).startswith(b"qemu-system")
            and any(a.startswith(b"remaplab-") and f"-{owner}-".encode() in a for a in argv)
        ):
            pids.append(int(entry.name))
    return pids


# Waits below end as soon as their condition holds; their limits only stop a broken run, so
# they are generous for a loaded 2-core machine rather than tight.
WAIT = 120.0


def wait_until(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)  # polling the process table; bounded by timeout
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def boot(arch: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REMAPLAB, "boot", "--arch", arch, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_uname_m_per_arch(arch: str) -> None:
    res = boot(arch, "--", "uname", "-m")
    assert res.returncode == 0, res.stderr
    assert res.stdout == {"x86_64": "x86_64\n", "arm64": "aarch64\n"}[arch]
    assert "accelerator" in res.stderr


def test_false_exits_1(arch: str) -> None:
    assert boot(arch, "--", "false").returncode == 1


def test_kernel_panic_at_boot_is_one_clear_line(arch: str) -> None:
    res = boot(arch, "--append", "init=/nonexistent", "--", "true", timeout=120)
    assert res.returncode == 125
    assert "kernel panicked during boot: Kernel panic - not syncing" in res.stderr
    assert "Traceback" not in res.stderr
    kept = re.search(r"\(console log: (\S+); QEMU stderr: (\S+)\)", res.stderr)
    assert kept, res.stderr  # the evidence named, and there after remaplab ended
    assert "Kernel panic" in Path(kept[1]).read_text() and Path(kept[2]).is_file()


def test_init_naming_busybox_init_still_starts_the_lab(arch: str) -> None:
    """init=/sbin/init (busybox init, the lab's own PID 1 after /init): the lab's start-up runs
    from its inittab instead of from /init, and the guest comes up the same."""
    res = boot(arch, "--append", "init=/sbin/init", "--", "cat /proc/1/cmdline")
    assert res.returncode == 0, res.stderr
    # busybox init started as init= names itself "init" (after /init it is "/bin/busybox init")
    assert res.stdout.split("\0")[0] == "init"


def test_a_boot_module_that_fails_to_load_is_one_clear_line(arch: str) -> None:
    """/init loads the boot modules in parallel and waits for each: one the kernel refuses (here
    blacklisted) fails the boot at once, named, not as a guest that never answers."""
    res = boot(arch, "--append", "module_blacklist=virtio_net", "--", "true", timeout=120)
    assert res.returncode == 125, res.stderr
    assert f"{arch} guest init failed: insmod kernel/drivers/net/virtio_net.ko" in res.stderr
    kept = re.search(r"\(console log: (\S+); QEMU stderr: \S+\)", res.stderr)
    assert kept and "remaplab: init failed" in Path(kept[1]).read_text(), res.stderr
    assert "timed out" not in res.stderr and "Traceback" not in res.stderr


def test_boot_timeout_names_timeout_and_last_line(arch: str) -> None:
    """--boot-timeout 0.8 (shorter than any TCG boot here: the fastest, arm64, is ~1.5 s to its
    readiness line; 1.5 was once enough): remaplab gives up on that timeout, says
    so with the last console line, and the command never runs (125, not the guest's 0)."""
    res = boot(arch, "--accel", "tcg", "--boot-timeout", "0.8", "--", "echo ran", timeout=180)
    assert res.returncode == 125, res.stdout + res.stderr
    assert "ran" not in res.stdout
    # the console's own wait: the boot's bound less QEMU's start (shown to a tenth, not as "1 s")
    assert re.search(r"timed out after 0\.[1-8] s waiting for", res.stderr), res.stderr
    assert "last console line" in res.stderr


def test_sigkill_mid_boot_leaves_no_qemu() -> None:
    proc = subprocess.Popen(
        [*REMAPLAB, "boot", "--arch", "x86_64", "--accel", "tcg", "--", "sleep", "60"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: qemu_pids(proc.pid), WAIT, "QEMU to start")
        proc.kill()
        proc.wait(WAIT)
        wait_until(lambda: not qemu_pids(proc.pid), WAIT, "QEMU to die after SIGKILL of its runner")
    finally:
        proc.kill()


def test_sigterm_tears_down() -> None:
    proc = subprocess.Popen(
        [*REMAPLAB, "boot", "--arch", "arm64", "--", "sleep", "60"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: qemu_pids(proc.pid), WAIT, "QEMU to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 128 + signal.SIGTERM
        assert not qemu_pids(proc.pid)
    finally:
        proc.kill()


def test_failing_test_leaves_no_qemu(tmp_path: Path, repo: Path) -> None:
    test = tmp_path / "test_fails.py"
    test.write_text(
        textwrap.dedent("""
        import os
        from lab.session import prepare
        from lab.vm import VM, VMOptions

        def test_boom():
            kernel, initramfs = prepare("arm64")
            with VM(kernel, initramfs, VMOptions(arch="arm64")) as vm:
                open(os.environ["PIDFILE"], "w").write(str(os.getpid()))
                assert vm.run("echo hi").stdout == "nope"
    """)
    )
    pidfile = tmp_path / "pid"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PIDFILE": str(pidfile)},
    )
    assert res.returncode == 1, res.stdout
    assert "1 failed" in res.stdout
    owner = int(pidfile.read_text())
    assert not qemu_pids(owner)


@pytest.mark.parametrize("arch", ["x86_64"])
def test_modprobe_distro_module_via_cli(arch: str) -> None:
    res = boot(arch, "--", "modprobe comedi_test && lsmod | grep -c '^comedi_test '")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"


def test_shell_needs_a_terminal() -> None:
    res = subprocess.run(
        [*REMAPLAB, "shell", "--arch", "x86_64"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 125
    assert res.stderr.strip() == (
        "remaplab: remaplab shell needs a terminal; for a command use: remaplab boot -- CMD"
    )


def test_keep_holds_the_failed_vm_reachable_then_stops_it(tmp_path: Path, repo: Path) -> None:
    """run --keep: the VM of a failed scenario stays up, reachable by the printed ssh line
    (host key pinned), until Ctrl-C; then nothing is left running. --keep-for is far longer
    than any wait here, so only SIGINT can end the run in time."""
    scen = tmp_path / "scen"
    scen.mkdir()
    (scen / "fails.yaml").write_text(
        "name: fails\ndescription: d\narches: [x86_64]\n"
        "steps:\n  - run: {command: 'touch /tmp/evidence; false'}\n"
    )
    keep = ["--keep", "--keep-for", "3600", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(
        [*REMAPLAB, "run", "--scenarios", str(scen), "--arch", "x86_64", *keep],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        # A background job starts with SIGINT ignored; Ctrl-C is what this test sends.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    line = ""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "kept x86_64 VM: ssh " in line or not line:
            break
    assert "kept x86_64 VM: ssh " in line, line
    ssh = line.split("VM: ", 1)[1].split(" (console")[0].split()
    assert "StrictHostKeyChecking=yes" in " ".join(ssh)
    res = subprocess.run(
        [*ssh, "-o", "BatchMode=yes", "ls /tmp/evidence"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0 and "/tmp/evidence" in res.stdout, res.stderr
    assert qemu_pids(proc.pid)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=WAIT) == 1
    wait_until(lambda: not qemu_pids(proc.pid), WAIT, "the kept VM to be stopped")


def test_boot_fails_on_kernel_reports_the_command_provoked() -> None:
    """A report the command provoked is a failure even when the command ended before the
    report was complete: 121 after the command's whole output, never its own status."""
    res = boot(
        "x86_64",
        "--",
        "modprobe multimap bug_mode=split_refcount && "
        "multimap-ctl --pages 8 --do munmap-part >/dev/null; echo done",
    )
    assert res.returncode == 121, res.stderr
    assert "kernel crash while running" in res.stderr and "WARNING: refcount bug" in res.stderr


def test_a_report_printed_as_the_command_ends_is_not_missed() -> None:
    """The report's first line is the command's last act: SSH brings the status and the serial
    port the report on separate paths; the console sync waits for the report either way."""
    res = boot(
        "x86_64",
        "--",
        "echo '<4>WARNING: CPU: 0 PID: 1 at mm/memory.c:1 remaplab_e2e_probe+0x0/0x10' > /dev/kmsg",
    )
    assert res.returncode == 121, res.stderr
    # a WARNING line with no stack after it: syzkaller's rules title it "WARNING in corrupted"
    assert "[WARNING] WARNING in" in res.stderr, res.stderr


def test_bench_compare_boots_interleaved_pairs(tmp_path: Path) -> None:
    """remaplab bench --compare-append: pairs of real boots, A without and B with the option,
    their figures and the paired verdict in the JSON (what the README's A/B figures came from)."""
    out = tmp_path / "compare.json"
    argv = ["bench", "--arch", "x86_64", "--accel", "tcg", "--runs", "2"]
    res = subprocess.run(
        [*REMAPLAB, *argv, "--compare-append", "loglevel=4", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr
    assert "x86_64 pair 2/2: A " in res.stderr
    (row,) = json.loads(out.read_text())["boot_compare"]
    assert row["arch"] == "x86_64" and row["accel"] == "tcg" and row["pairs"] == 2
    assert row["b_append"] == ["loglevel=4"] and row["b_qemu_args"] == []
    assert len(row["a_samples_s"]) == len(row["b_samples_s"]) == 2
    assert all(0.3 < s < 120 for s in row["a_samples_s"] + row["b_samples_s"])
    assert row["b_faster_pairs"] + row["b_slower_pairs"] <= 2
    for side in ("a_phases_s", "b_phases_s"):  # where each side's seconds went
        assert {"kernel to /init", "ssh connect"} <= set(row[side]), row[side]
    assert 0 < row["sign_test_p"] <= 1
