"""The suite prints results whose messages quote compilers and make: text, never markup."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from lab.log import quiet
from lab.scenario import suite as suite_mod
from lab.scenario.load import load_file
from lab.scenario.result import Outcome, Result
from lab.scenario.suite import Suite

REPO = Path(__file__).resolve().parents[2]


def test_a_message_with_brackets_is_printed_as_text(tmp_path: Path) -> None:
    console = Console(file=(tmp_path / "out.txt").open("w"), width=300)
    with Progress(console=console) as progress:
        suite = Suite([], tmp_path, quiet, None, "auto", None, progress)
        message = "x does not build: make[1]: *** [/root/src/x.o] Error 1 [/red]"
        suite.record(Result("x", "x86_64", Outcome.BUILD_FAILURE, message=message))
    console.file.close()
    assert "[/root/src/x.o] Error 1 [/red]" in (tmp_path / "out.txt").read_text()
    assert [r.outcome for r in suite.results] == [Outcome.BUILD_FAILURE]


class FailingPool:
    """A pool whose VM will not stop: the second fault, met while handling the first."""

    def discard(self, arch: str) -> None:
        raise OSError(f"{arch}: the VM would not stop")


def test_a_lab_fault_while_stopping_a_vm_is_still_the_scenarios_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lab bug in a scenario, then another while stopping its VM: the worker thread must not
    die with a traceback (its scenario and the rest of its queue would be lost); the scenario
    is a setup error whose saved traceback holds both faults."""

    def broken(*args: object) -> Result:
        raise RuntimeError("a bug of the lab's own")

    monkeypatch.setattr(suite_mod, "run_scenario", broken)
    item = load_file(REPO / "scenarios" / "bad-requests.yaml")
    with Progress(console=Console(file=io.StringIO())) as progress:
        suite = Suite([item], tmp_path, quiet, None, "auto", None, progress)
        result = suite.run_one(item, "x86_64", FailingPool())  # type: ignore[arg-type]
    assert result.outcome == Outcome.SETUP_ERROR
    assert "RuntimeError: a bug of the lab's own" in result.message
    trace = (tmp_path / "bad-requests-x86_64" / "internal-error.txt").read_text()
    assert "a bug of the lab's own" in trace and "the VM would not stop" in trace
