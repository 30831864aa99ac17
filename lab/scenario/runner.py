"""Run one scenario on a pooled VM: observe (steps, health, console), let the verdict decide,
keep the evidence (console excerpt, decoded reports, steps.jsonl, result.json, a repro bundle).

The pieces: result.py (what a run produced), pool.py (VMs), steps.py (one executor per step
kind), health.py (taint, stats, meminfo), verdict.py (the pure decision)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import paramiko

from lab.build import BuildFailure
from lab.crash import settled_reports
from lab.errors import BootError, GuestTimeout, LabError
from lab.kernel import Kernel
from lab.scenario import modules
from lab.scenario.bundle import write_bundle
from lab.scenario.health import (
    TAINT,
    After,
    Figures,
    after_commands,
    judge,
    load_command,
    meminfo_command,
    parse_after,
    parse_meminfo,
    parse_taint,
)
from lab.scenario.load import Loaded
from lab.scenario.pool import Baseline, VMPool, hold_kept, how_to_reach
from lab.scenario.result import Outcome, Result, StepFailed, StepRecord, during, step_at
from lab.scenario.schema import Scenario
from lab.scenario.steps import ScenarioRun, execute
from lab.scenario.verdict import Observed, decide, only_expected
from lab.ssh import CommandAborted
from lab.steplog import StepLog, recording, step
from lab.symbolize import decode_reports
from lab.vm import VM
from lab.watch import KernelWatch, step_interrupt, sync_console

__all__ = [
    "Outcome",
    "Result",
    "StepRecord",
    "VMPool",
    "hold_kept",
    "how_to_reach",
    "run_scenario",
]

PROBE_TIMEOUT_S = 5.0
PANIC_EXIT_WAIT_S = 3.0
OUTPUT_KEPT = 4096  # characters of a stopped command's stdout and stderr kept (the end)
GUEST_ERRORS = (LabError, OSError, EOFError, paramiko.SSHException)


def skip_reason(scenario: Scenario, kernel: Kernel) -> str | None:
    """Why the scenario cannot run on this kernel, or None."""
    for req in scenario.requires:
        if req == "cma" and kernel.config_value("CONFIG_DMA_CMA") != "y":
            return f"needs CMA: {kernel.identity} has no CONFIG_DMA_CMA"
        if req == "nocma" and kernel.config_value("CONFIG_DMA_CMA") == "y":
            return f"needs a kernel without CMA: {kernel.identity} has CONFIG_DMA_CMA"
        if req == "kasan" and kernel.config_value("CONFIG_KASAN") != "y":
            return f"needs KASAN: {kernel.identity} has no CONFIG_KASAN"
        if req == "debug_vm" and kernel.config_value("CONFIG_DEBUG_VM") != "y":
            return f"needs CONFIG_DEBUG_VM (e.g. the lab-built kernel): {kernel.identity} has none"
        for option, name in (("CONFIG_KASAN", "nokasan"), ("CONFIG_DEBUG_VM", "nodebug_vm")):
            if req == name and kernel.config_value(option) == "y":
                return f"needs a kernel without {option}: {kernel.identity} has it"
        if req == "multimap" and kernel.kdir is None:
            return f"needs the multimap module: {kernel.identity} has no build tree"
    for option in scenario.requires_config:
        if kernel.config_value(option) not in ("y", "m"):
            return f"needs {option}: {kernel.identity} does not have it"
    return None


def _before(run: ScenarioRun, pool: VMPool, arch: str) -> Figures:
    """Load multimap and take the health baseline, in one round trip (each costs ~60 ms under
    TCG); the last healthy scenario's closing figures on this VM serve as the baseline."""
    s = run.s
    # Without multimap, a copy left loaded by a failed scenario goes first (clean start).
    load = load_command(s.module.params) if s.module.load else "rmmod multimap 2>/dev/null; true"
    with step("module-load", load=s.module.load, params=s.module.params):
        cached = pool.baselines.pop(arch, None)
        if cached is not None and cached.vm is run.vm:
            (modprobe,) = run.sections([load])
            figures = Figures(cached.taint, cached.meminfo)
        else:
            meminfo_cmd = meminfo_command(_kasan_generic(run.vm))
            taint, meminfo, modprobe = run.sections([TAINT, meminfo_cmd, load])
            figures = Figures(parse_taint(taint.text), parse_meminfo(meminfo.text))
        if s.module.load and not modprobe.status_ok:
            raise LabError(f"loading multimap failed: {modprobe.text.strip()}")
    return figures


def _kasan_generic(vm: VM) -> bool:
    """Whether the guest's kernel has generic KASAN, whose quarantine holds freed memory."""
    return vm.kernel.config_value("CONFIG_KASAN_GENERIC") == "y"


def _steps(run: ScenarioRun, result: Result) -> tuple[int, str] | None:
    """Run the steps in order until one fails: its (index, kind), or None."""
    for index, st in enumerate(run.s.steps):
        record = StepRecord(index, st.kind, True, 0.0)
        if run.vm.console is not None:
            record.console_at = run.vm.console.mark()
        result.steps.append(record)
        t0 = time.monotonic()
        try:
            with step("scenario-step", index=index, kind=st.kind) as logged:
                try:
                    record.evidence = execute(run, st.kind, st.body)
                except StepFailed as exc:
                    record.ok, record.detail, record.evidence = False, exc.detail, exc.evidence
                    logged["failed"] = exc.detail[:500]
                except (GuestTimeout, *GUEST_ERRORS) as exc:  # judged by _observe: the step
                    record.ok, record.detail = False, str(exc) or type(exc).__name__
                    record.evidence = _output_so_far(exc)
                    logged["failed"] = record.detail[:500]
                    result.failing_step = index
                    raise
        finally:
            record.seconds = time.monotonic() - t0
            result.step_seconds += record.seconds
        if not record.ok:
            result.failing_step = index
            return index, st.kind
    return None


def _output_so_far(exc: BaseException) -> dict[str, str]:
    """What a command stopped or timed out had printed (a reproducer's lines before the oops):
    the end of its stdout and stderr."""
    out = {}
    for name in ("stdout", "stderr"):
        text = getattr(exc, name, "")
        if isinstance(text, str) and text:
            out[name] = text[-OUTPUT_KEPT:]
    return out


def _after(run: ScenarioRun) -> After:
    with step("health"):
        outputs = run.sections(after_commands(run.s, _kasan_generic(run.vm)))
    return parse_after(run.s, [(o.text, o.status_ok) for o in outputs])


def _unresponsive(vm: VM) -> str | None:
    """After a step timeout: None when the guest still answers a trivial command, else why it
    counts as hung (with the console evidence)."""
    if not vm.alive:
        return "the guest died"
    try:
        if vm.run("true", timeout=PROBE_TIMEOUT_S).ok:
            return None
    except (GuestTimeout, *GUEST_ERRORS):
        pass
    assert vm.console is not None
    silent = time.monotonic() - vm.console.last_output
    return (
        f"the guest answers nothing over SSH within {PROBE_TIMEOUT_S:g} s and its console has "
        f"been silent for {silent:.0f} s (last line: {vm.console.last_line()!r})"
    )


def _observe(
    run: ScenarioRun, pool: VMPool, arch: str, result: Result, mods: list[modules.Prepared]
) -> Observed:
    """Run the scenario on its VM and record what happened (not what it means)."""
    try:
        return _watched(run, pool, arch, result, mods)
    finally:
        run.vm.watch = None  # the scenario's watch ends with it


def _watched(
    run: ScenarioRun, pool: VMPool, arch: str, result: Result, mods: list[modules.Prepared]
) -> Observed:
    vm, s = run.vm, run.s
    observed = Observed(expect=s.expect.kernel)
    try:
        before = _before(run, pool, arch)
        assert vm.console is not None
        kernel = KernelWatch(vm.console, vm.console.mark())
        vm.watch = step_interrupt(kernel, lambda r: only_expected(s.expect.kernel, r))
        modules.load_all(run, mods)
        failed = _steps(run, result)
        if vm.console is not None:
            if vm.ssh is not None and vm.alive:  # the steps' reports count to the steps
                sync_console(vm.console, vm.ssh.run)
            result.steps_end = vm.console.mark()
        run.release_all()
        if failed is not None:
            detail = result.steps[failed[0]].detail
            return replace(observed, failed_step=failed, failed_detail=detail)
        modules.unload_all(run, mods)
        after = _after(run)
        problem = judge(s, before, after)
        if problem is None:
            pool.baselines[arch] = Baseline(vm, after.figures.taint, after.figures.meminfo)
            return observed
        return replace(observed, health=(problem.outcome, problem.message))
    except GuestTimeout as exc:
        vm.watch = None  # the probe asks whether the guest answers, whatever it printed
        return replace(observed, timeout=str(exc), unresponsive=_unresponsive(vm))
    except modules.ModuleProblem as exc:
        return replace(observed, health=(Outcome.FAILED, str(exc)))
    except GUEST_ERRORS as exc:
        cut = isinstance(exc, CommandAborted) and exc.reason.startswith("kernel report")
        # A panicking guest drops SSH a moment before QEMU exits (panic=-1, -no-reboot).
        if vm.console is not None and vm.alive and not cut:
            vm.console.wait_closed(PANIC_EXIT_WAIT_S)
        failing = result.failing_step
        return replace(
            observed,
            cut_by_report=cut,
            error=str(exc) or type(exc).__name__,
            error_step=(failing, result.steps[failing].kind) if failing is not None else None,
            vm_alive=vm.alive,
            ssh_connected=vm.ssh is not None and vm.ssh.connected,
            last_console_line=vm.console.last_line() if vm.console else "",
        )


def _evidence(
    result: Result, vm: VM, mark: int, kernel: Kernel, log_dir: Path, symbols: dict[str, Path]
) -> Observed:
    """Read the console since mark: the excerpt and the decoded reports go to log_dir."""
    assert vm.console is not None
    if not vm.alive:
        vm.console.wait_closed(2.0)
    reports = settled_reports(vm.console, mark)
    raw = vm.console.raw(mark)
    (log_dir / "console.log").write_text(raw.decode(errors="replace"))
    result.crashes = decode_reports(reports, kernel, symbols)
    # Byte offsets: the lines as find_reports counts them (splitlines), undecodable bytes kept.
    lines = raw.decode(errors="surrogateescape").splitlines(keepends=True)
    for report, crash in zip(reports, result.crashes, strict=True):
        at = mark + len("".join(lines[: report.line - 1]).encode(errors="surrogateescape"))
        step = step_at(result.steps, at, result.steps_end)
        crash["step"] = {"index": step.index, "kind": step.kind} if step else None
        crash["after_steps"] = result.steps_end is not None and at >= result.steps_end
    for n, crash in enumerate(result.crashes):
        before = f"{crash['before']}\n" if crash.get("before") else ""
        (log_dir / f"crash-{n}.txt").write_text(f"{crash['title']}\n\n{before}{crash['decoded']}\n")
    return Observed(reports=tuple(reports), vm_alive=vm.alive)


@dataclass
class Context:
    loaded: Loaded
    arch: str
    pool: VMPool
    log_dir: Path
    kernel: Kernel | None = None  # for the bundle, once prepared
    argv: list[str] | None = None  # QEMU's, once a VM was started
    modules: list[modules.Prepared] = field(default_factory=list)  # built before boot


VM_EVIDENCE = ("qemu-argv.txt", "qemu-stderr.log")


def keep_vm_evidence(workdir: Path, log_dir: Path) -> None:
    """Copy a VM's argv, QEMU stderr and whole console log into the result folder (the VM's own
    folder goes when the VM stops)."""
    for name in VM_EVIDENCE:
        if (workdir / name).is_file():
            shutil.copy(workdir / name, log_dir / name)
    console = workdir / "console.log"
    if console.is_file():
        target = "console-vm.log" if (log_dir / "console.log").exists() else "console.log"
        shutil.copy(console, log_dir / target)


def _on_vm(ctx: Context, result: Result, vm: VM) -> None:
    """The scenario on a ready VM: observe, decide, keep the evidence, recycle the VM."""
    assert vm.console is not None
    mark = vm.console.mark()
    run = ScenarioRun(ctx.loaded.scenario, vm, ctx.loaded.folder)
    observed = _observe(run, ctx.pool, ctx.arch, result, ctx.modules)
    assert ctx.kernel is not None
    symbols = modules.symbol_files(ctx.modules)
    console = _evidence(result, vm, mark, ctx.kernel, ctx.log_dir, symbols)
    verdict = decide(replace(observed, reports=console.reports, vm_alive=console.vm_alive))
    result.outcome, result.message = verdict.outcome, verdict.message
    if result.outcome == Outcome.CRASH and result.crashes:
        result.message += during(result.crashes[0])
    ctx.argv = vm.boot_argv or vm.argv  # a restored VM's bundle boots (its -kernel, -append)
    if not result.ok:
        keep_vm_evidence(vm.workdir, ctx.log_dir)
    if not result.ok and ctx.pool.keep and vm.alive:
        ctx.pool.park(ctx.arch)  # kept for the user; the next scenario gets a fresh VM
    lost = observed.error is not None and observed.vm_alive and not observed.ssh_connected
    if console.reports or not vm.alive or not result.ok or observed.timeout is not None or lost:
        # The next scenario starts on a clean kernel: after a failure the guest may still hold
        # the scenario's modules (a failed step skips their unload: the next insmod said "File
        # exists" and took the blame), programs and files; a timed-out or lost one may hang.
        ctx.pool.discard(ctx.arch)


def _run(ctx: Context, result: Result) -> None:
    s = ctx.loaded.scenario
    if ctx.arch not in s.arches:
        result.outcome, result.message = Outcome.SKIPPED, f"scenario is for {', '.join(s.arches)}"
        return
    try:
        ctx.kernel = ctx.pool.prepared(ctx.arch).kernel
        result.kernel = ctx.kernel.identity
    except (LabError, OSError, subprocess.SubprocessError) as exc:
        result.outcome = Outcome.SETUP_ERROR
        result.message = f"could not prepare the {ctx.arch} kernel and initramfs: {exc}"
        return
    reason = skip_reason(s, ctx.kernel)
    if reason:
        result.outcome, result.message = Outcome.SKIPPED, reason
        return
    try:
        ctx.modules = modules.build_all(s, ctx.loaded.folder, ctx.kernel)
        result.notes += modules.warning_notes(ctx.modules)
    except BuildFailure as exc:
        result.outcome, result.message = Outcome.BUILD_FAILURE, str(exc)
        (ctx.log_dir / "build.log").write_text(str(exc) + "\n")
        return
    result.booted = not ctx.pool.warm(ctx.arch, s.boot)
    try:
        vm = ctx.pool.get(ctx.arch, s.boot)
    except BootError as exc:
        verdict = decide(Observed(boot_error=str(exc)))
        result.outcome, result.message = verdict.outcome, verdict.message
        if isinstance(exc.workdir, Path):
            keep_vm_evidence(exc.workdir, ctx.log_dir)
        ctx.pool.discard(ctx.arch)
        return
    if result.booted:
        result.notes += vm.boot_notes
    _on_vm(ctx, result, vm)


def run_scenario(loaded: Loaded, arch: str, pool: VMPool, out_dir: Path) -> Result:
    """Run loaded on arch; everything it leaves is in out_dir/NAME-ARCH (steps.jsonl: where the
    time went)."""
    s = loaded.scenario
    start = time.monotonic()
    log_dir = out_dir / f"{s.name}-{arch}"
    # A folder left by an earlier run into the same --out goes first: a passing scenario kept
    # the old failure's bundle (its signature said "failed") next to its new result.
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "scenario.yaml").write_text(loaded.text)
    result = Result(s.name, arch, Outcome.PASSED, log_dir=str(log_dir))
    steplog = StepLog(log_dir / "steps.jsonl", pool.subscribers)
    ctx = Context(loaded, arch, pool, log_dir)
    with recording(steplog), step("scenario", name=s.name, arch=arch) as logged:
        _run(ctx, result)
        logged["outcome"] = result.outcome.value
    if not result.ok and ctx.kernel is not None:  # after the step log is complete
        kos = [ko for p in ctx.modules for ko in p.kos]
        bundle = write_bundle(
            log_dir, loaded, result.as_dict(), ctx.kernel, pool.spec(), ctx.argv, kos
        )
        result.message += f" (repro: {bundle / 'repro.sh'})"
    result.seconds = time.monotonic() - start
    (log_dir / "result.json").write_text(json.dumps(result.as_dict(), indent=1, default=str))
    return result
