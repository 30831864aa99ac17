"""The suite prints results whose messages quote compilers and make: text, never markup."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from lab.log import quiet
from lab.scenario.result import Outcome, Result
from lab.scenario.suite import Suite


def test_a_message_with_brackets_is_printed_as_text(tmp_path: Path) -> None:
    console = Console(file=(tmp_path / "out.txt").open("w"), width=300)
    with Progress(console=console) as progress:
        suite = Suite([], tmp_path, quiet, None, "auto", None, progress)
        message = "x does not build: make[1]: *** [/root/src/x.o] Error 1 [/red]"
        suite.record(Result("x", "x86_64", Outcome.BUILD_FAILURE, message=message))
    console.file.close()
    assert "[/root/src/x.o] Error 1 [/red]" in (tmp_path / "out.txt").read_text()
    assert [r.outcome for r in suite.results] == [Outcome.BUILD_FAILURE]
