"""The step executors of the lab's own kinds (run, and multimap's map, check, release,
reload_module), registered by kind in EXECUTORS (lab/scenario/context.py): adding a kind is one
model in lab/scenario/schema.py's STEP_KINDS and one @executor function.  Mappings the lab did
not make (a device map, a user's program) are lab/scenario/byo.py's.

An executor gets the scenario's context (ScenarioRun: the guest, the mappings held open, the
deadline) and its step's model, returns the step's evidence, and raises StepFailed when the
step's expectation does not hold."""

from __future__ import annotations

import re

from lab.guest_tools import HoldFailed, ctl_args, hold, pagemap
from lab.scenario import byo
from lab.scenario.context import (
    EXECUTORS,
    Evidence,
    HeldMapping,
    ScenarioRun,
    execute,
    executor,
    expect_refusal,
    new_seed,
    tail,
)
from lab.scenario.oracles import check_mapping, headline, search_tokens
from lab.scenario.result import StepFailed
from lab.scenario.schema import CheckStep, MapStep, ReleaseStep, ReloadStep, RunStep, size_bytes

__all__ = ["EXECUTORS", "ScenarioRun", "execute"]


@executor("run")
def run_command(run: ScenarioRun, st: RunStep) -> Evidence:
    res = run.run(st.command, st.timeout)
    ev = {"status": res.status, "stdout": tail(res.stdout), "stderr": tail(res.stderr)}
    if st.status is not None and res.status != st.status:
        raise StepFailed(f"exit status {res.status}, expected {st.status}", ev)
    if st.output is not None and not re.search(st.output, res.stdout):
        raise StepFailed(f"output does not match /{st.output}/", ev)
    return ev


@executor("map")
def map_buffer(run: ScenarioRun, st: MapStep) -> Evidence:
    if st.foreign:
        return byo.map_device(run, st)
    seed = new_seed()
    args = ctl_args(
        st.backing,
        st.mapping,
        st.pages,
        private=st.private,
        private_write=st.private_write,
        offset=size_bytes(st.offset),
        length=size_bytes(st.length),
        actions=st.actions,
        seed=seed,
    )
    if st.errno is not None:
        return expect_refusal(run, st, "multimap-ctl", args)
    if st.name in run.held:
        raise StepFailed(f"mapping {st.name!r} already exists: release it first")
    try:
        held = hold(run.vm, args, timeout=run.remaining(st.timeout))
    except HoldFailed as exc:  # a check or a lifecycle action failed: the step's finding
        raise StepFailed(str(exc), {"report": exc.report}) from None
    failed = [a for a in held.report.get("actions", []) if not a["ok"]]
    run.held[st.name] = HeldMapping.of_multimap(held, st, seed)
    if failed:
        raise StepFailed(f"lifecycle action failed: {failed}", {"report": held.report})
    return {"pid": held.pid, "addr": held.report["addr"], "source": held.report["info"]}


def _physical(run: ScenarioRun, mapping: HeldMapping, n: int) -> tuple[list[int | None], Evidence]:
    """The guest-physical witness: where each page's token sits in guest RAM."""
    if not mapping.writable:
        raise StepFailed("physical witness needs a writable mapping (tokens are written)")
    module = [int(p) for p in mapping.report.get("pfns", [])]
    found = search_tokens(
        run.vm.guest_ram().find_page_tokens, mapping.seed, mapping.first, n, module
    )
    return found.pfns, found.evidence


@executor("check")
def check(run: ScenarioRun, st: CheckStep) -> Evidence:
    if st.of not in run.held:
        raise StepFailed(f"no mapping named {st.of!r} (map it first)")
    mapping = run.held[st.of]
    if mapping.foreign:
        return byo.check_foreign_mapping(run, st, mapping)
    report = mapping.report
    n, addr = mapping.pages, mapping.addr
    dump = pagemap(run.vm, mapping.pid, addr, addr + n * 4096) if st.pagemap else None
    phys, phys_evidence = _physical(run, mapping, n) if st.physical else (None, {})
    problems, evidence = check_mapping(report, st, dump, phys)
    evidence.update(phys_evidence)
    if problems:
        raise StepFailed(headline(problems) + "\n".join(p.render() for p in problems), evidence)
    return evidence


@executor("release")
def release(run: ScenarioRun, st: ReleaseStep) -> Evidence:
    if st.of not in run.held:
        raise StepFailed(f"no mapping named {st.of!r}")
    evidence = run.held.pop(st.of).holder.release(timeout=run.remaining(30))
    return evidence if isinstance(evidence, dict) else {}


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
