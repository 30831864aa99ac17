"""Bounds on what a user may ask for: a slip of the keyboard is refused at once, in one line that
names the option and the bound (exit 125), before any VM, build or run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lab.cli import main
from lab.errors import LabError
from lab.limits import count, memory, memory_problem, seconds

REPRO = str(Path(__file__).resolve().parents[1] / "data/repro/no-crash.c")
BOOT = ["boot", "--arch", "x86_64"]

CASES = [
    (["run", "--jobs", "99999"], "--jobs must be from 1 to 64, not 99999"),
    (["run", "--jobs", "0"], "--jobs must be from 1 to 64, not 0"),
    (["run", "--keep", "--keep-for", "inf"], "--keep-for must be more than 0"),
    (["run", "--shard", "1/99999999999999999999"], "(1 <= N <= 1000)"),
    ([*BOOT, "--memory", "abc", "--", "true"], "--memory: 'abc' is no memory size"),
    ([*BOOT, "--memory", "0", "--", "true"], "--memory: '0' is no memory size"),
    ([*BOOT, "--memory", "99999999G", "--", "true"], "--memory: 99999999G is outside 128M"),
    ([*BOOT, "--smp", "9999", "--", "true"], "--smp must be from 1 to 8, not 9999"),
    ([*BOOT, "--timeout", "0", "--", "true"], "--timeout must be more than 0"),
    ([*BOOT, "--boot-timeout", "inf", "--", "true"], "--boot-timeout must be more than 0"),
    (["reproduce", "--repro", REPRO, "--runs", "999999999999"], "--runs must be from 1 to"),
    (["reproduce", "--repro", REPRO, "--vms", "99999"], "--vms must be from 1 to 64"),
    (["reproduce", "--repro", REPRO, "--timeout", "1e999"], "not inf"),
    (["reproduce", "--repro", REPRO, "--memory", "5"], "'5' is no memory size"),
    (["reproduce", "--repro", REPRO, "--smp", "0"], "--smp must be from 1 to 8, not 0"),
    (["soak", "--runs", "99999999999"], "--runs must be from 1 to 10000"),
    (["soak", "--run-timeout", "nan"], "--run-timeout must be more than 0"),
    (["bench", "--runs", "0"], "--runs must be from 1 to 10000, not 0"),
    (["bench", "--runs", "-1"], "--runs must be from 1 to 10000, not -1"),
    (["bench", "--compare-append", "quiet", "--runs", "0"], "--runs must be from 1 to 10000"),
    (["kernel", "build", "--jobs", "99999"], "--jobs must be from 1 to 1024"),
    (
        ["bisect", REPRO, "--repo", "/tmp", "--good", "a", "--bad", "b", "--runs", "100000"],
        "--runs must be from 1 to 10000",
    ),
]


@pytest.mark.parametrize(("argv", "said"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_out_of_bounds_is_one_line_and_125(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        assert main(argv) == 125
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "results").exists()  # refused before any result folder


def test_the_bounds_themselves() -> None:
    assert count("--n", 1, 5) == 1 and count("--n", 5, 5) == 5
    with pytest.raises(LabError, match="--n must be from 1 to 5, not 6"):
        count("--n", 6, 5)
    assert seconds("--t", 0.5) == 0.5
    for bad in (0.0, -1.0, math.inf, math.nan, 1e9):
        with pytest.raises(LabError, match="--t must be more than 0"):
            seconds("--t", bad)
    assert memory("--m", "128M") == "128M" and memory("--m", "64G") == "64G"
    for bad in ("127M", "65G", "1T", "1g", "", " 1G", "1.5G", "1234567890M", "512M\n"):
        assert memory_problem(bad) is not None, bad
