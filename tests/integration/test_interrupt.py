"""Ctrl-C and SIGTERM of `remaplab run` mid-suite: every VM down at once, the interrupted
scenario recorded as interrupted, junit.xml and report.json written, exit 130 / 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.paths import REPO

STOP_BOUND_S = 5.0  # the bound for every VM to be down after the signal


def _reset_sigint() -> None:
    # A script's background job starts with SIGINT ignored and Python then installs no
    # KeyboardInterrupt handler: give the child the default disposition (FACTS.md).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when(
    proc: subprocess.Popen[str], ready: Callable[[], bool], signum: int
) -> tuple[str, float]:
    """Once ready() (a scenario step is running: bounded, 600 s), send signum; the process's
    stderr (or merged output) and how long it took to end after the signal."""
    try:
        deadline = time.monotonic() + 600
        while not ready():
            assert proc.poll() is None, "it ended before it could be interrupted"
            assert time.monotonic() < deadline, "no scenario step started within 600 s"
            time.sleep(0.2)  # polling files another process writes; bounded by the deadline
        sent = time.monotonic()
        proc.send_signal(signum)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # its output and stacks make the failure's evidence
            proc.kill()
            out, err = proc.communicate()
            return f"(still running 60 s after the signal: killed)\n{err or out or ''}", 60.0
        return (err or out or ""), time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _qemus(pid: int) -> list[str]:
    res = subprocess.run(
        ["pgrep", "-f", f"remaplab-x86_64-{pid}-"], capture_output=True, text=True, check=False
    )
    return res.stdout.split()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_suite(tmp_path: Path, signum: int, status: int) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "run", "--arch", "x86_64", "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_reset_sigint,
        env={**os.environ, "COLUMNS": "200"},
    )
    err, took = _interrupt_when(proc, lambda: _newest_running_step(out, 0.0), signum)
    assert proc.returncode == status, err[-3000:]
    assert took < STOP_BOUND_S + 2.0, f"took {took:.1f} s to stop"  # + interpreter exit
    assert not _qemus(proc.pid), "a QEMU outlived remaplab"
    assert (out / "junit.xml").is_file()
    report = json.loads((out / "report.json").read_text())
    assert "interrupted" in report
    outcomes = [r["outcome"] for r in report["results"]]
    assert "interrupted" in outcomes, outcomes
    assert "Traceback" not in err


def _newest_running_step(folder: Path, since: float) -> bool:
    return any(
        log.stat().st_mtime >= since and '"scenario-step"' in log.read_text()
        for log in folder.glob("*/steps.jsonl")
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_pytest_suite(tmp_path: Path, signum: int, status: int) -> None:
    """The same under pytest: VMs down at once, junit.xml written, 130 / 143."""
    junit = tmp_path / "junit.xml"
    results = REPO / "results" / "pytest"
    started = time.time()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "scenarios",
            "--arch",
            "x86_64",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            "-q",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_reset_sigint,
    )
    out, took = _interrupt_when(proc, lambda: _newest_running_step(results, started), signum)
    stacks = stacks_path_of(proc.pid)
    where = stacks.read_text() if stacks.is_file() else "(no stacks: it stopped within 5 s)"
    # + pytest's own teardown
    assert took < STOP_BOUND_S + 3.0, f"took {took:.1f} s to stop:\n{out[-3000:]}\n{where}"
    assert proc.returncode == status, out[-3000:]
    assert not _qemus(proc.pid), "a QEMU outlived pytest"
    assert junit.is_file() and "<testsuite" in junit.read_text()


def test_an_interrupt_swallowed_in_paramiko_still_stops_pytest(tmp_path: Path) -> None:
    """paramiko's Channel.__del__ swallows any exception, KeyboardInterrupt included: a signal
    handled while one runs used to be lost, and the suite ran on to its end (exit 130 after it).
    The signal is sent inside such a __del__ (held open by tests/data/swallow)."""
    mark = tmp_path / "in-del"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "data" / "swallow"), str(REPO)]),
        "REMAPLAB_SWALLOW_MARK": str(mark),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "scenarios", "--arch", "x86_64", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_reset_sigint,
    )
    out, took = _interrupt_when(proc, mark.exists, signal.SIGINT)
    assert took < STOP_BOUND_S + 3.0, f"took {took:.1f} s to stop:\n{out[-3000:]}"
    assert proc.returncode == 130, out[-3000:]
    assert "raised again: it was swallowed where it arrived" in out, out[-3000:]
    assert not _qemus(proc.pid), "a QEMU outlived pytest"


def stacks_path_of(pid: int) -> Path:
    """Where the pytest process pid leaves its threads' stacks when it stops slowly."""
    return REPO / "results" / "pytest" / f"slow-stop-{pid}.txt"


def _children(pid: int) -> list[int]:
    res = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in res.stdout.split()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_signal_mid_soak(tmp_path: Path, signum: int) -> None:
    """A soak stopped mid-run, by SIGTERM or killed outright, takes its run down with it: the
    run records the interrupted scenario, writes its reports, and no QEMU outlives it."""
    out = tmp_path / "soak"
    soak = ["soak", "--runs", "2", "--out", str(out), "--", "--arch", "x86_64"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", *soak],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_reset_sigint,
    )
    runs: list[int] = []

    def running() -> bool:
        runs[:] = _children(proc.pid)
        return bool(runs) and _newest_running_step(out / "run-01", 0.0)

    said, _took = _interrupt_when(proc, running, signum)
    assert len(runs) == 1, runs
    deadline = time.monotonic() + STOP_BOUND_S + 25.0  # the run's grace, reports, its exit
    while Path(f"/proc/{runs[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # not our child: polled, bounded by the deadline
    assert not Path(f"/proc/{runs[0]}").exists(), "the run outlived the soak"
    assert not _qemus(runs[0]), "a QEMU outlived the soak"
    if signum == signal.SIGTERM:
        assert proc.returncode == 143, said[-3000:]
        assert "Traceback" not in said
    report = json.loads((out / "run-01" / "report.json").read_text())
    assert "interrupted" in [r["outcome"] for r in report["results"]]
    assert not (out / "run-02").exists()
