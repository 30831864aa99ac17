"""Bring your own code, end to end: remaplab cc for both arches run in a guest from a --share
folder, argv quoting, a kernel crash under a command (reported fast, exit 121, console log kept),
and an installed wheel (outside the repository) that boots and collects a user's scenarios."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

from lab.cli import EXIT_KERNEL_CRASH

REMAPLAB = [sys.executable, "-m", "lab.cli"]
HELLO = textwrap.dedent("""\
    #include <pthread.h>
    #include <stdio.h>
    #include "remaplab.h"
    static void *worker(void *arg) { return arg; }
    int main(void)
    {
        pthread_t t;
        pthread_create(&t, NULL, worker, NULL);
        pthread_join(t, NULL);
        printf("hello from C\\n");
        return 0;
    }
""")
CONSOLE_LOG = re.compile(r"console log: (\S+/console\.log)")


def remaplab(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REMAPLAB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def test_cc_binary_runs_from_a_share_with_argv_quoting(arch: str, tmp_path: Path) -> None:
    """cc for the arch; boot --share . from that folder: the command starts there, runs the
    binary, and what it writes is on the host; `sh -c 'echo a && echo b'` stays one argument."""
    (tmp_path / "hello.c").write_text(HELLO)
    res = remaplab("cc", "--arch", arch, "-o", "hello", "hello.c", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    script = "echo a && echo b && ./hello && pwd && echo written > from-guest"
    res = remaplab("boot", "--arch", arch, "--share", ".", "--", "sh", "-c", script, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"a\nb\nhello from C\n{tmp_path}\n", res.stderr
    assert (tmp_path / "from-guest").read_text() == "written\n"


def test_panic_under_a_command_is_reported_at_once(tmp_path: Path) -> None:
    start = time.monotonic()
    res = remaplab(
        "boot",
        "--arch",
        "x86_64",
        "--timeout",
        "300",
        "--",
        "echo before; echo c > /proc/sysrq-trigger; sleep 300",
    )
    took = time.monotonic() - start
    assert res.returncode == EXIT_KERNEL_CRASH, res.stderr
    assert res.stdout == "before\n"
    assert "Kernel panic - not syncing: sysrq triggered crash" in res.stderr  # the report
    assert "kernel crash while running" in res.stderr and "the guest died" in res.stderr
    assert took < 150, f"took {took:.0f} s: the crash was not reported before the timeout"
    (log,) = CONSOLE_LOG.findall(res.stderr)
    assert "sysrq triggered crash" in Path(log).read_text()


def test_report_while_the_command_still_runs_ends_it(tmp_path: Path) -> None:
    """A WARNING (multimap's split_refcount bug) while the command then sleeps: reported once the
    report is complete, the guest still alive, the output so far printed, exit 121."""
    start = time.monotonic()
    res = remaplab(
        "boot",
        "--arch",
        "arm64",
        "--",
        "modprobe multimap bug_mode=split_refcount && "
        "multimap-ctl --pages 8 --do munmap-part >/dev/null; echo done; sleep 300",
    )
    took = time.monotonic() - start
    assert res.returncode == EXIT_KERNEL_CRASH, res.stderr
    assert res.stdout == "done\n"
    assert "kernel crash while running" in res.stderr
    assert "[REFCOUNT] WARNING: refcount bug" in res.stderr
    assert took < 150, f"took {took:.0f} s"
    (log,) = CONSOLE_LOG.findall(res.stderr)
    assert "refcount_t" in Path(log).read_text()


def _installed_venv(tmp_path: Path, repo: Path) -> Path:
    """A fresh venv with remaplab's wheel installed (no editable checkout); its dependencies are
    the running environment's, reached through a .pth file."""
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(repo)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = wheels.glob("remaplab-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "remaplab-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_installed_wheel_boots_and_collects_a_users_scenarios(tmp_path: Path, repo: Path) -> None:
    venv = _installed_venv(tmp_path, repo)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import lab.paths as p; print(p.MODULE_SRC)"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
    )
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    res = subprocess.run(
        [venv / "bin" / "remaplab", "boot", "--arch", "x86_64", "--", "uname", "-m"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0 and res.stdout == "x86_64\n", res.stderr
    project = tmp_path / "project"
    (project / "checks").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nremaplab_scenarios = ["checks"]\n'
    )
    (project / "checks" / "hello.yaml").write_text(
        "name: hello\ndescription: a user's scenario\narches: [x86_64]\n"
        "steps:\n  - run: {command: 'echo hi from the guest', output: 'hi from'}\n"
    )
    res = subprocess.run(
        [venv / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", "--arch", "x86_64"],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert "checks/hello.yaml" in res.stdout and "1 passed" in res.stdout, res.stdout + res.stderr
    assert (project / "results" / "pytest").is_dir()


def test_shell_starts_in_the_share_and_reports_the_guest_dying(tmp_path: Path) -> None:
    """remaplab shell on a terminal, from inside a --share folder: the shell starts there; a
    panic under it ends the session with the report, the kept console log and exit 121."""
    import pexpect

    child = pexpect.spawn(
        REMAPLAB[0],
        [*REMAPLAB[1:], "shell", "--arch", "x86_64", "--share", "."],
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 200),
    )
    try:
        # The prompt names the folder; typing before it shows could be flushed by the shell.
        child.expect(f"remaplab:{tmp_path}# ")
        child.sendline("echo CWD=$(pwd) MARK-$((40+2))")
        child.expect(f"CWD={tmp_path} MARK-42")
        child.sendline("echo c > /proc/sysrq-trigger")
        child.expect(pexpect.EOF)
        out = child.before
    finally:
        child.close(force=True)
    assert child.exitstatus == EXIT_KERNEL_CRASH, out
    assert "kernel crash under the shell: [PANIC]" in out
    logs = set(CONSOLE_LOG.findall(out))
    assert len(logs) == 1, out
    (log,) = logs
    assert "sysrq triggered crash" in Path(log).read_text()


def test_boot_builds_and_loads_a_users_module_with_its_parameters(arch: str) -> None:
    """boot --module DIR --module-param MOD.NAME=VALUE: the driver is built for the guest's
    kernel and loaded before the command; a parameter it lacks (the kernel would load it anyway)
    is refused in one line, exit 125."""
    drv = str(Path(__file__).resolve().parents[1] / "data" / "byo" / "faultdrv")
    res = remaplab(
        "boot", "--arch", arch, "--module", drv, "--module-param", "faultmap.npages=4",
        "--", "cat /sys/module/faultmap/parameters/npages; ls -l /dev/faultmap | cut -c1-10",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["4", "crw-------"], res.stdout
    assert "loaded faultmap.ko npages=4" in res.stderr
    bad = remaplab(
        "boot", "--arch", arch, "--module", drv, "--module-param", "faultmap.npage=4", "--", "true"
    )
    assert bad.returncode == 125, bad.stderr
    assert "faultmap.ko has no parameter 'npage'" in bad.stderr
    assert "Traceback" not in bad.stderr
