"""Steps on code the lab did not write: a `program:` (the user's C, compiled statically for the
arch, run in the guest, optionally handing its mapping over with remaplab_hold), a `map:` of any
device node or file (held by remaplab-map), and the checks of such mappings (lab/scenario/
foreign.py judges them)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
import signal
import weakref
from dataclasses import dataclass
from typing import Any

from lab.cc import compile_static
from lab.errors import LabError
from lab.guest_tools import HoldFailed, faults, hold, pagemap
from lab.log import quiet
from lab.scenario.context import (
    Evidence,
    HeldMapping,
    ScenarioRun,
    executor,
    expect_refusal,
    new_seed,
    tail,
)
from lab.scenario.foreign import Witnesses, check_foreign
from lab.scenario.oracles import headline, search_tokens
from lab.scenario.result import StepFailed
from lab.scenario.schema import CheckStep, MapStep, ProgramStep, size_bytes
from lab.vm import VM

PAGE = 4096
BIN_DIR = "/tmp/remaplab-bin"
HOLD_DIR = "/tmp/remaplab-hold"
EXITED = "@@remaplab-exited"
_uploaded: weakref.WeakKeyDictionary[VM, set[str]] = weakref.WeakKeyDictionary()


def _device_args(st: MapStep, seed: int) -> list[str]:
    args = ["--device", str(st.device), "--length", str(size_bytes(st.length))]
    args += ["--offset", str(size_bytes(st.offset)), "--seed", str(seed)]
    if st.private:
        args.append("--private")
    for action in st.actions:
        args += ["--do", action]
    return args


def map_device(run: ScenarioRun, st: MapStep) -> Evidence:
    """remaplab-map maps the device and holds it; or, with errno, the mapping must fail."""
    seed = new_seed()
    args = _device_args(st, seed)
    if st.errno is not None:
        # no token is written if it maps after all: the pages may not be the driver's
        return expect_refusal(run, st, "remaplab-map", [*args, "--no-touch"])
    if st.name in run.held:
        raise StepFailed(f"mapping {st.name!r} already exists: release it first")
    try:
        held = hold(run.vm, args, timeout=run.remaining(st.timeout), tool="remaplab-map")
    except HoldFailed as exc:
        raise StepFailed(f"mapping {st.device} failed: {exc}", {"report": exc.report}) from None
    r = held.report
    mapping = HeldMapping(
        held,
        held.pid,
        int(r["addr"]),
        int(r["mapped_pages"]),
        seed,
        0,
        r,
        foreign=True,
        writable=True,
        hole=r.get("hole"),
    )
    run.held[st.name] = mapping
    evidence = {"pid": held.pid, "addr": r["addr"], "device": st.device, "actions": r["actions"]}
    if not r.get("tokens_read_back"):
        # Data written to page i did not stay in page i: the witnesses say where it went.
        what = f"{faults(r)}what was written through {st.device} does not read back"
        try:
            check_foreign_mapping(run, CheckStep(of=st.name), mapping)
        except StepFailed as exc:
            raise StepFailed(f"{what}; {exc.detail}", {**evidence, **exc.evidence}) from None
        raise StepFailed(what, evidence)
    return evidence


def _witnesses(
    run: ScenarioRun, m: HeldMapping, dump: dict[str, Any]
) -> tuple[Witnesses, Evidence]:
    walk = dump.get("walk")
    extra: Evidence = {}
    physical = None
    hits: list[list[int]] | None = None
    beyond: set[int] = set()
    if m.writable:
        ram = run.vm.guest_ram()
        found = search_tokens(ram.find_page_tokens, m.seed, m.first, m.pages, walk)
        physical, hits, extra = found.pfns, found.hits, found.evidence
        beyond = {i for i, p in enumerate(walk or []) if p is not None and not ram.holds(p)}
    flags = dump.get("walk_kpageflags")
    w = Witnesses(walk, physical, m.hole, dump.get("walk_error"), frozenset(beyond), flags, hits)
    return w, extra


def check_foreign_mapping(run: ScenarioRun, st: CheckStep, m: HeldMapping) -> Evidence:
    """The kernel walk, pagemap and guest RAM of a mapping the lab did not make."""
    dump = pagemap(run.vm, m.pid, m.addr, m.addr + m.pages * PAGE, walk=True)
    w, extra = _witnesses(run, m, dump)
    problems, evidence = check_foreign(st, w, dump)
    evidence.update(extra)
    if problems:
        raise StepFailed(headline(problems) + "\n".join(p.render() for p in problems), evidence)
    return evidence


def _binary(run: ScenarioRun, st: ProgramStep) -> str:
    """The program, compiled for the guest's arch (cached) and copied into it once per VM."""
    source = (run.base / st.source).resolve()
    try:
        local = compile_static(run.vm.options.arch, source, st.cflags, log=quiet)
    except LabError as exc:
        raise StepFailed(f"{st.source} does not compile:\n{exc}") from None
    # Its own name last, in a folder per build: the kernel's reports name the task by it
    # ("Comm: mytest"), not by the digest that keeps two programs of one name apart.
    digest = hashlib.sha256(local.read_bytes()).hexdigest()[:12]
    guest = f"{BIN_DIR}/{digest}/{source.stem}"
    done = _uploaded.setdefault(run.vm, set())
    if guest not in done:
        run.run(f"mkdir -p {BIN_DIR}/{digest}")
        run.vm.put(local, guest, 0o755, timeout=run.remaining(st.timeout))
        done.add(guest)
    return guest


def exit_text(status: str) -> str:
    """A shell's $? as words: "exited with status 1", "was killed by SIGBUS"."""
    try:
        code = int(status)
    except ValueError:
        return f"ended ({status!r})"
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(code - 128).name}"
    return f"exited with status {code}"


def _judge(st: ProgramStep, status: int, out: str, err: str) -> Evidence:
    ev: Evidence = {"status": status, "stdout": tail(out), "stderr": tail(err)}
    if st.status is not None and status != st.status:
        raise StepFailed(f"{st.source} {exit_text(str(status))}, expected {st.status}", ev)
    if st.output is not None and not re.search(st.output, out):
        raise StepFailed(f"{st.source}'s output does not match /{st.output}/", ev)
    return ev


@dataclass
class ProgramHold:
    """A user's program blocked in remaplab_hold(): released through its fifo, then awaited."""

    run: ScenarioRun
    step: ProgramStep
    folder: str

    def release(self, timeout: float = 30.0) -> Evidence:
        name, d = self.step.hold, self.folder
        script = (
            f"exec 3<>{d}/{name}.release; printf x >&3; exec 3>&-; "
            f"while [ ! -e {d}/status ]; do usleep 2000; done; "
            f'echo "{EXITED} $(cat {d}/status)"; cat {d}/out'
        )
        res = self.run.run(script, min(timeout, self.step.timeout))
        head, _, out = res.stdout.partition("\n")
        err = self.run.run(f"cat {d}/err").stdout
        return _judge(self.step, int(head.split()[-1]), out, err)


def _start_holding(run: ScenarioRun, st: ProgramStep, prog: str) -> Evidence:
    seed = new_seed()
    d = f"{HOLD_DIR}/{st.hold}-{seed}"
    argv = shlex.join([prog, *st.args])
    script = (
        f"rm -rf {d}; mkdir -p {d}; "
        f"( cd /tmp && REMAPLAB_HOLD_DIR={d} REMAPLAB_SEED={seed} {argv} "
        f"> {d}/out 2> {d}/err < /dev/null; echo $? > {d}/status ) & "
        f"while ! ls {d}/*.json >/dev/null 2>&1 && [ ! -e {d}/status ]; do usleep 2000; done; "
        f"cat {d}/*.json 2>/dev/null || "
        f'{{ echo "{EXITED} $(cat {d}/status)"; cat {d}/out {d}/err; }}'
    )
    res = run.run(script, st.timeout)
    if res.stdout.startswith(EXITED):
        head, _, output = res.stdout.partition("\n")
        raise StepFailed(
            f"{st.source} {exit_text(head.split()[-1])} before it held {st.hold!r} "
            "(remaplab_hold was not reached)",
            {"output": tail(output, 3000)},
        )
    report = json.loads(res.stdout.strip().splitlines()[0])
    if report.get("name") != st.hold:
        ProgramHold(run, st.model_copy(update={"hold": report.get("name")}), d).release(st.timeout)
        raise StepFailed(
            f"{st.source} held {report.get('name')!r}; the step says hold: {st.hold} "
            "(the name given to remaplab_hold)",
            {"report": report},
        )
    length = int(report["length"])
    run.held[str(st.hold)] = HeldMapping(
        ProgramHold(run, st, d),
        int(report["pid"]),
        int(report["addr"]),
        length // PAGE,
        int(report["seed"]),
        0,
        report,
        True,
        True,
    )
    return {"pid": report["pid"], "addr": report["addr"], "length": length}


@executor("program")
def program(run: ScenarioRun, st: ProgramStep) -> Evidence:
    prog = _binary(run, st)
    if st.hold is not None:
        if st.hold in run.held:
            raise StepFailed(f"mapping {st.hold!r} already exists: release it first")
        return _start_holding(run, st, prog)
    res = run.run(f"cd /tmp && {shlex.join([prog, *st.args])}", st.timeout)
    return _judge(st, res.status, res.stdout, res.stderr)
