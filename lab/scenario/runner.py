"""Run scenarios on pooled VMs: one VM per (arch, boot settings), reused across scenarios with
the module reloaded in between, rebooted after a crash or a timeout."""

from __future__ import annotations

import contextlib
import json
import random
import re
import shlex
import threading
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import paramiko

from lab.crash import Report, settled_reports
from lab.errors import BootError, GuestTimeout, LabError
from lab.guest_tools import STATS, Held, ctl_args, hold, pagemap, parse_stats
from lab.kernel import Kernel
from lab.log import Log, quiet
from lab.rootfs import Initramfs
from lab.scenario.bundle import write_bundle
from lab.scenario.load import Loaded
from lab.scenario.oracles import check_mapping, physical_pfns, taint_flags, token
from lab.scenario.schema import Boot, CheckStep, Crash, MapStep, ReloadStep, RunStep, Scenario
from lab.session import prepare
from lab.symbolize import decode_reports
from lab.vm import VM, VMOptions

LIVE_STATS = ("buffers", "pages", "vmas", "files")


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    CRASH = "kernel crash"
    BOOT_FAILURE = "boot failure"
    TIMEOUT = "timeout"  # a step ran out of time; the guest still answers
    HANG = "guest hang"  # a step ran out of time and the guest answers nothing
    LOST = "lost connection"  # SSH to the guest broke while QEMU still ran
    SKIPPED = "skipped"


@dataclass
class StepRecord:
    index: int
    kind: str
    ok: bool
    seconds: float
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    scenario: str
    arch: str
    outcome: Outcome
    seconds: float = 0.0
    step_seconds: float = 0.0
    message: str = ""
    failing_step: int | None = None
    steps: list[StepRecord] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    log_dir: str = ""
    booted: bool = False  # a VM was booted for this scenario (not a warm one reused)

    @property
    def overhead(self) -> float:
        return max(0.0, self.seconds - self.step_seconds)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["overhead"] = self.overhead
        return data

    def render(self) -> str:
        lines = [f"{self.scenario} [{self.arch}]: {self.outcome.value}: {self.message}"]
        if self.failing_step is not None:
            step = self.steps[self.failing_step] if self.failing_step < len(self.steps) else None
            if step:
                lines.append(f"failing step {step.index} ({step.kind}): {step.detail}")
                if step.evidence:
                    lines.append(json.dumps(step.evidence, indent=1, default=str)[:3000])
        for crash in self.crashes:
            text = crash.get("decoded") or crash["text"]
            lines += [f"kernel report: {crash['title']}", text[:4000]]
        if self.log_dir:
            lines.append(f"logs: {self.log_dir}")
        return "\n".join(lines)


SECTION_MARK = "@@remaplab-section"


@dataclass
class Section:
    text: str
    status_ok: bool


class StepFailed(Exception):
    def __init__(self, detail: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.evidence = evidence or {}


def boot_key(arch: str, boot: Boot) -> tuple[Any, ...]:
    return (arch, boot.memory, boot.smp, boot.append)


class VMPool:
    """At most one live VM per arch; reused while the boot settings match."""

    def __init__(
        self,
        kernel_image: Path | None = None,
        kdir: Path | None = None,
        log: Log = quiet,
        accel: str = "auto",
        keep: bool = False,
        lab_kernel: str | None = None,
    ) -> None:
        self.kernel_image = kernel_image
        self.lab_kernel = lab_kernel
        self.kdir = kdir
        self.log = log
        self.accel = accel
        self.keep = keep
        self._prepared: dict[str, tuple[Kernel, Initramfs]] = {}
        self._vms: dict[str, tuple[tuple[Any, ...], VM]] = {}
        self.kept: list[VM] = []
        # per arch: (VM, taint, meminfo) measured after the last healthy scenario on that VM
        self.baselines: dict[str, tuple[VM, int, dict[str, int]]] = {}

    def prepared(self, arch: str) -> tuple[Kernel, Initramfs]:
        if arch not in self._prepared:
            self._prepared[arch] = prepare(
                arch, self.kernel_image, self.kdir, log=self.log, lab_kernel=self.lab_kernel
            )
        return self._prepared[arch]

    def warm(self, arch: str, boot: Boot) -> bool:
        """Whether get() would reuse a running VM."""
        current = self._vms.get(arch)
        return bool(current and current[0] == boot_key(arch, boot) and current[1].alive)

    def get(self, arch: str, boot: Boot) -> VM:
        key = boot_key(arch, boot)
        current = self._vms.get(arch)
        if current and current[0] == key and current[1].alive:
            return current[1]
        self.discard(arch)
        kernel, initramfs = self.prepared(arch)
        vm = VM(
            kernel,
            initramfs,
            VMOptions(
                arch=arch, accel=self.accel, memory=boot.memory, smp=boot.smp, append=boot.append
            ),
            self.log,
        )
        vm.start()
        self._vms[arch] = (key, vm)
        return vm

    def spec(self) -> dict[str, str | None]:
        """How this pool chose its kernel (what a repro bundle reruns with)."""
        return {
            "kernel_image": str(self.kernel_image) if self.kernel_image else None,
            "kdir": str(self.kdir) if self.kdir else None,
            "lab_kernel": self.lab_kernel,
        }

    def park(self, arch: str) -> None:
        """Keep the arch's VM (a failure to look at) out of reuse; it outlives close()."""
        current = self._vms.pop(arch, None)
        if current:
            self.kept.append(current[1])
            self.log(f"kept the {arch} VM after a failure: {how_to_reach(current[1])}")

    def discard(self, arch: str) -> None:
        current = self._vms.pop(arch, None)
        if current:
            current[1].stop()

    def close(self) -> None:
        """Stop every VM but the kept ones."""
        for arch in list(self._vms):
            self.discard(arch)


def how_to_reach(vm: VM) -> str:
    """The ssh command line for a running VM (host key pinned), and its console log."""
    if vm.ssh is None:
        return f"console {vm.console_log}"
    known = vm.workdir / "known_hosts"
    known.write_text(f"[127.0.0.1]:{vm.ssh.port} {vm.initramfs.keys.host_pub}\n")
    return (
        f"ssh -p {vm.ssh.port} -i {vm.initramfs.keys.client_key} "
        f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes root@127.0.0.1 "
        f"(console {vm.console_log})"
    )


def _skip_reason(scenario: Scenario, kernel: Kernel) -> str | None:
    for req in scenario.requires:
        if req == "cma" and kernel.config_value("CONFIG_DMA_CMA") != "y":
            return f"needs CMA: {kernel.identity} has no CONFIG_DMA_CMA"
        if req == "nocma" and kernel.config_value("CONFIG_DMA_CMA") == "y":
            return f"needs a kernel without CMA: {kernel.identity} has CONFIG_DMA_CMA"
        if req == "kasan" and kernel.config_value("CONFIG_KASAN") != "y":
            return f"needs KASAN: {kernel.identity} has no CONFIG_KASAN"
        if req == "debug_vm" and kernel.config_value("CONFIG_DEBUG_VM") != "y":
            return f"needs CONFIG_DEBUG_VM (e.g. the lab-built kernel): {kernel.identity} has none"
        if req == "multimap" and kernel.kdir is None:
            return f"needs the multimap module: {kernel.identity} has no build tree"
    for option in scenario.requires_config:
        if kernel.config_value(option) not in ("y", "m"):
            return f"needs {option}: {kernel.identity} does not have it"
    return None


class ScenarioRun:
    """One scenario on one VM."""

    def __init__(self, loaded: Loaded, arch: str, vm: VM, log_dir: Path) -> None:
        self.loaded = loaded
        self.s = loaded.scenario
        self.arch = arch
        self.vm = vm
        self.log_dir = log_dir
        self.held: dict[str, tuple[Held, MapStep, int]] = {}
        self.reports: dict[str, dict[str, Any]] = {}
        self.deadline = time.monotonic() + self.s.timeout

    def remaining(self, want: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise GuestTimeout(f"scenario {self.s.name} exceeded its {self.s.timeout:g} s timeout")
        return min(want, left)

    def run(self, cmd: str, timeout: float = 60.0) -> Any:
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
        res = self.run(_load_command(params))
        if not res.ok:
            raise StepFailed(
                f"loading multimap {_module_args(params)} failed: {res.stdout.strip()}"
            )

    def step_run(self, st: RunStep) -> dict[str, Any]:
        res = self.run(st.command, st.timeout)
        ev = {"status": res.status, "stdout": res.stdout[-2000:], "stderr": res.stderr[-2000:]}
        if st.status is not None and res.status != st.status:
            raise StepFailed(f"exit status {res.status}, expected {st.status}", ev)
        if st.output is not None and not re.search(st.output, res.stdout):
            raise StepFailed(f"output does not match /{st.output}/", ev)
        return ev

    def step_map(self, st: MapStep) -> dict[str, Any]:
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
            res = self.run("multimap-ctl " + shlex.join(args))
            report = json.loads(next(ln for ln in res.stdout.splitlines() if ln.startswith("{")))
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
        if st.name in self.held:
            raise StepFailed(f"mapping {st.name!r} already exists: release it first")
        held = hold(self.vm, args, timeout=self.remaining(120))
        failed = [a for a in held.report.get("actions", []) if not a["ok"]]
        self.held[st.name] = (held, st, seed)
        if failed:
            raise StepFailed(f"lifecycle action failed: {failed}", {"report": held.report})
        return {"pid": held.pid, "addr": held.report["addr"], "source": held.report["info"]}

    def step_check(self, st: CheckStep) -> dict[str, Any]:
        if st.of not in self.held:
            raise StepFailed(f"no mapping named {st.of!r} (map it first)")
        held, mst, seed = self.held[st.of]
        report = held.report
        n = int(report["mapped_pages"])
        addr = int(report["addr"])
        dump = None
        if st.pagemap is not None:
            dump = pagemap(self.vm, held.pid, addr, addr + n * 4096)
        phys = None
        if st.physical:
            if not report["request"]["writable"]:
                raise StepFailed("physical witness needs a writable mapping (tokens are written)")
            tokens = {token(seed, mst.offset + i) for i in range(n)}
            start = time.monotonic()
            found = self.vm.guest_ram().find_page_tokens(tokens)
            phys = physical_pfns(found, seed, mst.offset, n)
            search_s = time.monotonic() - start
        problems, evidence = check_mapping(report, st, dump, phys)
        if st.physical:
            evidence["physical_search_s"] = round(search_s, 4)
            odd = {
                i: found.get(token(seed, mst.offset + i), [])
                for i, p in enumerate(phys or [])
                if p is None
            }
            if odd:  # a token seen 0 or 2+ times: where, exactly
                evidence["physical_hits"] = {str(i): pfns for i, pfns in odd.items()}
        if problems:
            raise StepFailed(
                "witnesses disagree:\n" + "\n".join(p.render() for p in problems), evidence
            )
        return evidence

    def step_release(self, name: str) -> dict[str, Any]:
        if name not in self.held:
            raise StepFailed(f"no mapping named {name!r}")
        held, _st, _seed = self.held.pop(name)
        held.release(timeout=self.remaining(30))
        return {}

    def step_reload(self, st: ReloadStep) -> dict[str, Any]:
        res = self.run("rmmod multimap")
        if st.expect_refused:
            if res.ok:
                raise StepFailed("rmmod succeeded while the module was in use")
            return {"rmmod": res.stderr.strip()}
        if not res.ok:
            raise StepFailed(f"rmmod multimap failed: {res.stderr.strip()}")
        self.load_module(st.params)
        return {}

    def release_all(self) -> None:
        for name in list(self.held):
            with contextlib.suppress(Exception):
                self.step_release(name)


def _expected_crash(expect: Crash, reports: list[Report]) -> bool:
    for r in reports:
        if expect.kind and not re.fullmatch(expect.kind, r.kind):
            continue
        if expect.title and not re.search(expect.title, r.title):
            continue
        return True
    return False


def run_scenario(loaded: Loaded, arch: str, pool: VMPool, out_dir: Path) -> Result:
    s = loaded.scenario
    start = time.monotonic()
    log_dir = out_dir / f"{s.name}-{arch}"
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "scenario.yaml").write_text(loaded.text)
    result = Result(s.name, arch, Outcome.PASSED, log_dir=str(log_dir))
    if arch not in s.arches:
        result.outcome, result.message = Outcome.SKIPPED, f"scenario is for {', '.join(s.arches)}"
        return _finish(result, start, log_dir)
    try:
        kernel, _initramfs = pool.prepared(arch)
        reason = _skip_reason(s, kernel)
        if reason:
            result.outcome, result.message = Outcome.SKIPPED, reason
            return _finish(result, start, log_dir)
        result.booted = not pool.warm(arch, s.boot)
        vm = pool.get(arch, s.boot)
    except BootError as exc:
        result.outcome, result.message = Outcome.BOOT_FAILURE, str(exc)
        pool.discard(arch)
        kernel = pool.prepared(arch)[0]  # prepared before get() booted
        write_bundle(log_dir, loaded.text, result.as_dict(), kernel, pool.spec(), None)
        return _finish(result, start, log_dir)
    assert vm.console is not None
    mark = vm.console.mark()
    run = ScenarioRun(loaded, arch, vm, log_dir)
    try:
        # One round trip before the steps (each costs ~60 ms under TCG): taint, memory, module.
        load = _load_command(s.module.params) if s.module.load else "true"
        cached = pool.baselines.pop(arch, None)
        if cached is not None and cached[0] is vm:
            # The last scenario on this VM ended healthy, measured just now: its figures are
            # this one's baseline (saves a drop_caches round under TCG).
            taint_before, mem_before = cached[1], cached[2]
            (modprobe,) = run.sections([load])
        else:
            taint, meminfo, modprobe = run.sections([TAINT, MEMINFO, load])
            taint_before = int(taint.text.strip() or 0)
            mem_before = _parse_meminfo(meminfo.text)
        if s.module.load and not modprobe.status_ok:
            raise LabError(f"loading multimap failed: {modprobe.text.strip()}")
        for index, step in enumerate(s.steps):
            t0 = time.monotonic()
            record = StepRecord(index, step.kind, True, 0.0)
            result.steps.append(record)
            try:
                if step.run:
                    record.evidence = run.step_run(step.run)
                elif step.map:
                    record.evidence = run.step_map(step.map)
                elif step.check:
                    record.evidence = run.step_check(step.check)
                elif step.release:
                    record.evidence = run.step_release(step.release.of)
                elif step.reload_module:
                    record.evidence = run.step_reload(step.reload_module)
            except StepFailed as exc:
                record.ok, record.detail, record.evidence = False, exc.detail, exc.evidence
                result.outcome, result.message = (
                    Outcome.FAILED,
                    f"step {index} ({step.kind}) failed",
                )
                result.failing_step = index
            finally:
                record.seconds = time.monotonic() - t0
                result.step_seconds += record.seconds
            if not record.ok:
                break
        run.release_all()
        after = _health(run, s, result, taint_before, mem_before)
        if after is not None and result.outcome == Outcome.PASSED:
            pool.baselines[arch] = (vm, *after)
    except GuestTimeout as exc:
        unresponsive = _unresponsive(vm)
        if unresponsive:
            result.outcome, result.message = Outcome.HANG, f"{exc}; {unresponsive}"
        else:
            result.outcome, result.message = Outcome.TIMEOUT, str(exc)
        pool.discard(arch)
    except (LabError, OSError, EOFError, paramiko.SSHException) as exc:
        # A panicking guest drops SSH a moment before QEMU exits (panic=-1, -no-reboot).
        if vm.console is not None and vm.alive:
            vm.console.wait_closed(PANIC_EXIT_WAIT_S)
        if not vm.alive:
            result.outcome, result.message = Outcome.CRASH, f"the guest died: {exc}"
        elif vm.ssh is None or not vm.ssh.connected:
            result.outcome = Outcome.LOST
            result.message = (
                f"lost the SSH connection to the guest ({exc or type(exc).__name__}); "
                f"QEMU still runs; last console line: {vm.console.last_line()!r}"
            )
            pool.discard(arch)
        else:
            result.outcome, result.message = Outcome.FAILED, f"lab error: {exc}"
    if not vm.alive:
        vm.console.wait_closed(2.0)
    reports = settled_reports(vm.console, mark)
    (log_dir / "console.log").write_text(vm.console.text(mark))
    result.crashes = decode_reports(reports, pool.prepared(arch)[0])
    for n, crash in enumerate(result.crashes):
        (log_dir / f"crash-{n}.txt").write_text(f"{crash['title']}\n\n{crash['decoded']}\n")
    expected = s.expect.kernel
    if isinstance(expected, Crash):
        if _expected_crash(expected, reports):
            if result.outcome in (Outcome.CRASH, Outcome.FAILED) and not vm.alive:
                result.outcome, result.message = Outcome.PASSED, "expected crash observed"
            elif result.outcome == Outcome.PASSED:
                result.message = "expected crash observed"
        elif result.outcome == Outcome.PASSED:
            result.outcome = Outcome.FAILED
            wanted = " ".join(x for x in (expected.kind, expected.title) if x)
            result.message = f"expected a kernel report ({wanted}), none seen"
    elif reports:
        result.outcome = Outcome.CRASH
        result.message = f"kernel report: {reports[0].title}"
    if result.outcome not in (Outcome.PASSED, Outcome.SKIPPED):
        bundle = write_bundle(
            log_dir, loaded.text, result.as_dict(), pool.prepared(arch)[0], pool.spec(), vm.argv
        )
        result.message += f" (repro: {bundle / 'repro.sh'})"
        if pool.keep and vm.alive:
            pool.park(arch)  # kept for the user; the next scenario gets a fresh VM
    if reports or not vm.alive:
        pool.discard(arch)  # the next scenario starts on a clean kernel
    return _finish(result, start, log_dir)


TAINT = "cat /proc/sys/kernel/tainted"
MEMINFO = "sync; echo 3 > /proc/sys/vm/drop_caches; cat /proc/meminfo"
# insmod of the known path: multimap has no dependencies, and busybox modprobe parsing the
# distro's modules.dep costs ~20 ms under arm64 TCG.
INSMOD = "insmod /lib/modules/$(uname -r)/extra/multimap.ko"


def _module_args(params: dict[str, int | str]) -> str:
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in params.items())


def _load_command(params: dict[str, int | str]) -> str:
    """(Re)load multimap with params; its messages on stdout."""
    return f"rmmod multimap 2>/dev/null; {INSMOD} {_module_args(params)} 2>&1"


def _parse_meminfo(out: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+)", out, re.M)}


def _health(
    run: ScenarioRun, s: Scenario, result: Result, taint_before: int, mem_before: dict[str, int]
) -> tuple[int, dict[str, int]] | None:
    """Kernel health after the steps, in one round trip: module stats back to zero and rmmod,
    no new taint, MemAvailable within tolerance (caches dropped)."""
    if result.outcome != Outcome.PASSED:
        return None
    check_module = s.module.load and s.expect.stats_zero
    stats_out, rmmod, taint, meminfo = run.sections(
        [
            STATS if check_module else "true",
            "rmmod multimap 2>&1" if check_module else "true",
            TAINT,
            MEMINFO,
        ]
    )
    if check_module:
        stats = parse_stats(stats_out.text)
        live = {k: stats.get(k, 0) for k in LIVE_STATS}
        if any(live.values()):
            result.outcome, result.message = Outcome.FAILED, f"multimap not back to zero: {live}"
            return None
        if not rmmod.status_ok:
            result.outcome = Outcome.FAILED
            result.message = f"rmmod after the scenario: {rmmod.text.strip()}"
            return None
    taint_after = int(taint.text.strip() or 0)
    bad = taint_flags(taint_before, taint_after)
    if bad and s.expect.kernel == "clean":
        result.outcome, result.message = Outcome.CRASH, f"kernel newly tainted: {', '.join(bad)}"
        return None
    mem_after = _parse_meminfo(meminfo.text)
    lost = mem_before.get("MemAvailable", 0) - mem_after.get("MemAvailable", 0)
    if s.expect.kernel == "clean" and lost > s.expect.meminfo_tolerance_kb:
        result.outcome = Outcome.FAILED
        result.message = (
            f"MemAvailable dropped by {lost} kB (> {s.expect.meminfo_tolerance_kb} kB tolerance)"
        )
    return taint_after, mem_after


PROBE_TIMEOUT_S = 5.0
PANIC_EXIT_WAIT_S = 3.0


def _unresponsive(vm: VM) -> str | None:
    """After a step timeout: None when the guest still answers a trivial command, else why it
    counts as hung (with the console evidence)."""
    if not vm.alive:
        return "the guest died"
    try:
        if vm.run("true", timeout=PROBE_TIMEOUT_S).ok:
            return None
    except (GuestTimeout, LabError, OSError, EOFError, paramiko.SSHException):
        pass
    assert vm.console is not None
    silent = time.monotonic() - vm.console.last_output
    return (
        f"the guest answers nothing over SSH within {PROBE_TIMEOUT_S:g} s and its console has "
        f"been silent for {silent:.0f} s (last line: {vm.console.last_line()!r})"
    )


def _finish(result: Result, start: float, log_dir: Path) -> Result:
    result.seconds = time.monotonic() - start
    (log_dir / "result.json").write_text(json.dumps(result.as_dict(), indent=1, default=str))
    return result


def hold_kept(kept: list[VM], limit: float, log: Log) -> None:
    """Hold the kept VMs (they die with this process) until Ctrl-C, SIGTERM, their own
    shutdown or the time limit; then stop them."""
    for vm in kept:
        log(f"kept {vm.options.arch} VM: {how_to_reach(vm)}")
    log(f"holding the kept VMs for up to {limit:.0f} s: Ctrl-C to stop them now")
    deadline = time.monotonic() + limit
    tick = threading.Event()
    try:
        while time.monotonic() < deadline and any(vm.alive for vm in kept):
            tick.wait(min(1.0, max(0.0, deadline - time.monotonic())))
        if time.monotonic() >= deadline:
            log(f"--keep-for {limit:.0f} s is over: stopping the kept VMs")
    except KeyboardInterrupt:
        log("stopping the kept VMs")
    finally:
        for vm in kept:
            vm.stop()
