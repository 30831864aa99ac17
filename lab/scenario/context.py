"""The context every step executor works in: the scenario's guest, the mappings held open for
the checks, the deadline; and the table of executors, keyed by step kind (EXECUTORS)."""

from __future__ import annotations

import contextlib
import json
import random
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from lab.errors import GuestTimeout, LabError
from lab.guest_tools import Held
from lab.scenario.health import load_command, module_args
from lab.scenario.result import StepFailed
from lab.scenario.schema import MapStep, ReleaseStep, Scenario
from lab.ssh import CommandResult
from lab.vm import VM

SECTION_MARK = "@@remaplab-section"


@dataclass(frozen=True)
class Section:
    text: str
    status_ok: bool


class Holder(Protocol):
    def release(self, timeout: float = 30.0) -> Any: ...


@dataclass(frozen=True)
class HeldMapping:
    """A mapping held open for the checks: who holds it (multimap-ctl, remaplab-map or the
    user's program), where, and the seed of the tokens written through it."""

    holder: Holder
    pid: int
    addr: int
    pages: int
    seed: int
    first: int  # token index of the first page
    report: dict[str, Any]
    foreign: bool  # not a multimap buffer: no module PFN list to compare with
    writable: bool
    hole: int | None = None

    @classmethod
    def of_multimap(cls, held: Held, step: MapStep, seed: int) -> HeldMapping:
        r = held.report
        return cls(
            held,
            held.pid,
            int(r["addr"]),
            int(r["mapped_pages"]),
            seed,
            step.first_page,
            r,
            False,
            bool(r["request"]["writable"]),
        )


class ScenarioRun:
    """One scenario on one VM: the context every executor works in."""

    def __init__(self, scenario: Scenario, vm: VM, base: Path | None = None) -> None:
        self.s = scenario
        self.vm = vm
        self.base = base or Path.cwd()  # the scenario file's folder: relative paths start here
        self.held: dict[str, HeldMapping] = {}
        self.deadline = time.monotonic() + scenario.timeout

    def remaining(self, want: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise GuestTimeout(f"scenario {self.s.name} exceeded its {self.s.timeout:g} s timeout")
        return min(want, left)

    def run(self, cmd: str, timeout: float = 60.0) -> CommandResult:
        return self.vm.run(cmd, timeout=self.remaining(timeout))

    def sections(self, commands: list[str], timeout: float = 60.0) -> list[Section]:
        """Several commands in one SSH round trip; each one's output and exit status."""
        script = "".join(f'( {cmd} ); echo "{SECTION_MARK} $?"\n' for cmd in commands)
        out = self.run(script, timeout).stdout
        parts = re.split(rf"^{SECTION_MARK} (\d+)$\n?", out, flags=re.M)
        found = [Section(parts[i], parts[i + 1] == "0") for i in range(0, len(parts) - 1, 2)]
        if len(found) != len(commands):
            raise LabError(f"guest commands cut short: {len(found)} of {len(commands)} ran")
        return found

    def load_module(self, params: dict[str, int | str]) -> None:
        res = self.run(load_command(params))
        if not res.ok:
            raise StepFailed(f"loading multimap {module_args(params)} failed: {res.stdout.strip()}")

    def release_all(self) -> None:
        for name in list(self.held):
            with contextlib.suppress(Exception):
                execute(self, "release", ReleaseStep(of=name))


Evidence = dict[str, Any]


def new_seed() -> int:
    """Fresh tokens for each mapping: stale ones from earlier runs never match."""
    return random.getrandbits(31) | 1


Executor = Callable[[ScenarioRun, Any], Evidence]
EXECUTORS: dict[str, Executor] = {}
F = TypeVar("F", bound=Callable[..., Evidence])


def executor(kind: str) -> Callable[[F], F]:
    """Register the executor of step kind `kind`."""

    def register(func: F) -> F:
        EXECUTORS[kind] = func
        return func

    return register


def execute(run: ScenarioRun, kind: str, body: Any) -> Evidence:
    return EXECUTORS[kind](run, body)


def tail(text: str, keep: int = 2000) -> str:
    """The end of a command's output, as a step's evidence keeps it; a cut says so."""
    if len(text) <= keep:
        return text
    return f"[{len(text) - keep} characters before these are not kept]\n{text[len(text) - keep :]}"


def expect_refusal(run: ScenarioRun, st: MapStep, tool: str, args: list[str]) -> Evidence:
    """A map step that expects an errno: TOOL (multimap-ctl, remaplab-map) must fail to map,
    with that errno, at the given stage."""
    res = run.run(f"{tool} " + shlex.join(args))
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise LabError(f"{tool} printed no JSON (exit {res.status}): {res.stderr[-500:]}")
    report = json.loads(line)
    if (
        report.get("ok")
        or report.get("errno") != st.errno
        or (st.stage and report.get("stage") != st.stage)
    ):
        wanted = f"expected {st.errno}{' at ' + st.stage if st.stage else ''}"
        if "stage" in report:  # a call failed: which, and how
            got = f"got {report.get('errno')} at {report['stage']}"
        else:  # every call succeeded (a later check may have failed: the report says)
            pages = report.get("mapped_pages")
            got = "but mmap() succeeded" + (f" for {pages} pages" if pages else "")
        raise StepFailed(f"{wanted}, {got}", {"report": report})
    return {"report": report}
