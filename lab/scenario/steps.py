"""The step executors, one per step kind, in a table keyed by kind (EXECUTORS): adding a kind is
one model in lab/scenario/schema.py's STEP_KINDS and one @executor function here.

An executor gets the scenario's context (ScenarioRun: the guest, the mappings held open, the
deadline) and its step's model, returns the step's evidence, and raises StepFailed when the
step's expectation does not hold."""

from __future__ import annotations

import contextlib
import json
import random
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lab.errors import GuestTimeout, LabError
from lab.guest_tools import Held, ctl_args, hold, pagemap
from lab.scenario.health import load_command, module_args
from lab.scenario.oracles import check_mapping, physical_pfns, token
from lab.scenario.result import StepFailed
from lab.scenario.schema import (
    CheckStep,
    MapStep,
    ReleaseStep,
    ReloadStep,
    RunStep,
    Scenario,
)
from lab.ssh import CommandResult
from lab.vm import VM

SECTION_MARK = "@@remaplab-section"


@dataclass(frozen=True)
class Section:
    text: str
    status_ok: bool


@dataclass(frozen=True)
class HeldMapping:
    """A mapping a map step holds open: the holder process, its step, its token seed."""

    held: Held
    step: MapStep
    seed: int


class ScenarioRun:
    """One scenario on one VM: the context every executor works in."""

    def __init__(self, scenario: Scenario, vm: VM) -> None:
        self.s = scenario
        self.vm = vm
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
                release(self, ReleaseStep(of=name))


Evidence = dict[str, Any]
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


@executor("run")
def run_command(run: ScenarioRun, st: RunStep) -> Evidence:
    res = run.run(st.command, st.timeout)
    ev = {"status": res.status, "stdout": res.stdout[-2000:], "stderr": res.stderr[-2000:]}
    if st.status is not None and res.status != st.status:
        raise StepFailed(f"exit status {res.status}, expected {st.status}", ev)
    if st.output is not None and not re.search(st.output, res.stdout):
        raise StepFailed(f"output does not match /{st.output}/", ev)
    return ev


def _refusal(run: ScenarioRun, st: MapStep, args: list[str]) -> Evidence:
    """A map step that expects an errno: the mapping must fail, at the given stage."""
    res = run.run("multimap-ctl " + shlex.join(args))
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise LabError(f"multimap-ctl printed no JSON (exit {res.status}): {res.stderr[-500:]}")
    report = json.loads(line)
    if (
        report.get("ok")
        or report.get("errno") != st.errno
        or (st.stage and report.get("stage") != st.stage)
    ):
        raise StepFailed(
            f"expected {st.errno}{' at ' + st.stage if st.stage else ''}, got "
            f"{report.get('errno') or 'success'} at {report.get('stage', '-')}",
            {"report": report},
        )
    return {"report": report}


@executor("map")
def map_buffer(run: ScenarioRun, st: MapStep) -> Evidence:
    seed = random.getrandbits(31) | 1  # fresh tokens: stale ones from earlier runs never match
    args = ctl_args(
        st.backing,
        st.mapping,
        st.pages,
        private=st.private,
        private_write=st.private_write,
        offset=st.offset,
        length=st.length,
        actions=st.actions,
        seed=seed,
    )
    if st.errno is not None:
        return _refusal(run, st, args)
    if st.name in run.held:
        raise StepFailed(f"mapping {st.name!r} already exists: release it first")
    held = hold(run.vm, args, timeout=run.remaining(120))
    failed = [a for a in held.report.get("actions", []) if not a["ok"]]
    run.held[st.name] = HeldMapping(held, st, seed)
    if failed:
        raise StepFailed(f"lifecycle action failed: {failed}", {"report": held.report})
    return {"pid": held.pid, "addr": held.report["addr"], "source": held.report["info"]}


def _physical(run: ScenarioRun, mapping: HeldMapping, n: int) -> tuple[list[int | None], Evidence]:
    """The guest-physical witness: where each page's token sits in guest RAM."""
    if not mapping.held.report["request"]["writable"]:
        raise StepFailed("physical witness needs a writable mapping (tokens are written)")
    seed, offset = mapping.seed, mapping.step.offset
    tokens = {token(seed, offset + i) for i in range(n)}
    start = time.monotonic()
    found = run.vm.guest_ram().find_page_tokens(tokens)
    phys = physical_pfns(found, seed, offset, n)
    evidence: Evidence = {"physical_search_s": round(time.monotonic() - start, 4)}
    odd = {i: found.get(token(seed, offset + i), []) for i, p in enumerate(phys) if p is None}
    if odd:  # a token seen 0 or 2+ times: where, exactly
        evidence["physical_hits"] = {str(i): pfns for i, pfns in odd.items()}
    return phys, evidence


@executor("check")
def check(run: ScenarioRun, st: CheckStep) -> Evidence:
    if st.of not in run.held:
        raise StepFailed(f"no mapping named {st.of!r} (map it first)")
    mapping = run.held[st.of]
    report = mapping.held.report
    n = int(report["mapped_pages"])
    addr = int(report["addr"])
    dump = pagemap(run.vm, mapping.held.pid, addr, addr + n * 4096) if st.pagemap else None
    phys, phys_evidence = _physical(run, mapping, n) if st.physical else (None, {})
    problems, evidence = check_mapping(report, st, dump, phys)
    evidence.update(phys_evidence)
    if problems:
        raise StepFailed(
            "witnesses disagree:\n" + "\n".join(p.render() for p in problems), evidence
        )
    return evidence


@executor("release")
def release(run: ScenarioRun, st: ReleaseStep) -> Evidence:
    if st.of not in run.held:
        raise StepFailed(f"no mapping named {st.of!r}")
    run.held.pop(st.of).held.release(timeout=run.remaining(30))
    return {}


@executor("reload_module")
def reload_module(run: ScenarioRun, st: ReloadStep) -> Evidence:
    res = run.run("rmmod multimap")
    if st.expect_refused:
        if res.ok:
            raise StepFailed("rmmod succeeded while the module was in use")
        return {"rmmod": res.stderr.strip()}
    if not res.ok:
        raise StepFailed(f"rmmod multimap failed: {res.stderr.strip()}")
    run.load_module(st.params)
    return {}
