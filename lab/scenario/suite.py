"""`remaplab run`: every selected scenario on every arch, arches in parallel, live progress,
a summary table, JUnit XML and JSON."""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
import traceback
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from lab import reaper
from lab.kernel import KernelSpec
from lab.log import Log
from lab.scenario.load import Loaded
from lab.scenario.pool import BootKey
from lab.scenario.report import kernels_by_arch, write_json, write_junit
from lab.scenario.runner import Outcome, Result, VMPool, run_scenario
from lab.scenario.schema import Boot
from lab.steplog import Event, Subscriber
from lab.vm import VM

STOP_GRACE_S = 4.0  # after SIGINT/SIGTERM: how long running scenarios get to record themselves
STYLE = {
    Outcome.PASSED: "green",
    Outcome.SKIPPED: "yellow",
    Outcome.FAILED: "red",
    Outcome.CRASH: "bold red",
    Outcome.BOOT_FAILURE: "bold red",
    Outcome.TIMEOUT: "red",
    Outcome.HANG: "bold red",
    Outcome.LOST: "bold red",
    Outcome.SETUP_ERROR: "bold red",
    Outcome.BUILD_FAILURE: "bold red",
    Outcome.INTERRUPTED: "yellow",
}


def order_for_reuse(loaded: list[Loaded], arch: str) -> list[Loaded]:
    """Group scenarios with the same boot settings so one VM serves them all (default first)."""
    default = BootKey.of(arch, Boot())

    def key(item: Loaded) -> tuple[bool, str, str]:
        boot = BootKey.of(arch, item.scenario.boot)
        return (boot != default, repr(boot), item.scenario.name)

    return sorted(loaded, key=key)


class Interrupted(Exception):
    """The suite was stopped by a signal; the reports of what finished are written."""

    def __init__(self, signum: int, results: list[Result]) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.results = results


@dataclass
class Suite:
    """One run of the suite: what every worker shares."""

    loaded: list[Loaded]
    out_dir: Path
    log: Log
    kernel: KernelSpec | None
    accel: str
    kept: list[VM] | None
    progress: Progress
    results: list[Result] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    queues: dict[str, queue.SimpleQueue[Loaded]] = field(default_factory=dict)
    tasks: dict[str, TaskID] = field(default_factory=dict)
    running: dict[str, tuple[str, Loaded]] = field(default_factory=dict)  # worker -> scenario
    only: Collection[tuple[str, str]] | None = None  # (scenario, arch) pairs: a shard's
    fresh: bool = False  # every scenario on a VM restored from its snapshot (run --fresh)

    def plan(self, arches: list[str]) -> None:
        for arch in arches:
            items = order_for_reuse(self.loaded, arch)
            if self.only is not None:
                items = [i for i in items if (i.scenario.name, arch) in self.only]
            self.queues[arch] = queue.SimpleQueue()
            for item in items:
                self.queues[arch].put(item)
            self.tasks[arch] = self.progress.add_task(f"{arch:7s}", total=len(items))

    def subscriber(self, task: TaskID, name: str) -> Subscriber:
        """A step-log subscriber: the progress line shows what the scenario waits on."""

        def show(event: Event) -> None:
            if event.event == "start" and event.step != "scenario":
                what = event.fields.get("kind", event.step)
                self.progress.update(task, description=f"{name}: {what}")

        return show

    def record(self, result: Result) -> None:
        stopping = self.stop.is_set() or reaper.signalled() is not None
        if stopping and result.outcome != Outcome.SKIPPED:
            # Whatever the scenario saw after the signal (its VM killed under it) is not a
            # verdict on the kernel: it was interrupted.
            result.message = f"interrupted ({result.outcome.value}: {result.message})"
            result.outcome = Outcome.INTERRUPTED
        with self.lock:
            self.results.append(result)
        if not result.ok:
            # Messages quote compilers and make ("[path] Error 1"): text, never markup.
            line = f"{result.scenario} [{result.arch}]: {result.outcome.value}: {result.message}"
            self.progress.console.print(Text(line, style=STYLE[result.outcome]))

    def run_one(self, item: Loaded, arch: str, pool: VMPool) -> Result:
        """One scenario; a bug of the lab's own is that scenario's result, and the run goes on."""
        try:
            return run_scenario(item, arch, pool, self.out_dir)
        except reaper.Stopping as exc:  # a VM it needed was refused: the run is stopping
            with contextlib.suppress(Exception):  # the run is going down: nothing to add
                pool.discard(arch)
            return Result(item.scenario.name, arch, Outcome.INTERRUPTED, message=str(exc))
        except Exception as exc:  # the rest of the suite must still run
            trace = "".join(traceback.format_exception(exc))
            try:
                pool.discard(arch)
            except Exception as again:  # still this scenario's result, never a dead worker
                trace += "\nthen, stopping its VM:\n" + "".join(traceback.format_exception(again))
            folder = self.out_dir / f"{item.scenario.name}-{arch}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "internal-error.txt").write_text(trace)
            message = f"internal error: {type(exc).__name__}: {exc} (traceback: {folder})"
            return Result(item.scenario.name, arch, Outcome.SETUP_ERROR, message=message)

    def worker(self, arch: str) -> None:
        task = self.tasks[arch]
        pool = VMPool(
            self.kernel, self.log, self.accel, keep=self.kept is not None, fresh=self.fresh
        )
        try:
            while not self.stop.is_set():
                reaper.reraise()  # --keep runs here, in the main thread
                try:
                    item = self.queues[arch].get_nowait()
                except queue.Empty:
                    break
                name = f"{arch:7s} {item.scenario.name}"
                self.progress.update(task, description=name)
                pool.subscribers = (self.subscriber(task, name),)
                me = threading.current_thread().name
                self.running[me] = (arch, item)
                self.record(self.run_one(item, arch, pool))
                self.running.pop(me, None)
                self.progress.advance(task)
        finally:
            pool.close()
            if self.kept is not None:
                self.kept.extend(pool.kept)
            else:
                for vm in pool.kept:
                    vm.stop()
        self.progress.update(task, description=f"{arch:7s} done")

    def interrupt(self, workers: list[threading.Thread]) -> None:
        """Stop now: no new scenario starts, every QEMU is killed (the running scenarios then
        end at once), and the workers get a bounded time to record them."""
        self.stop.set()
        reaper.kill_all()
        deadline = time.monotonic() + STOP_GRACE_S
        for t in workers:
            t.join(max(0.0, deadline - time.monotonic()))
        reaper.kill_all()  # a VM a worker booted after the first sweep
        for arch, item in list(self.running.values()):  # still running: recorded as such
            name = item.scenario.name
            self.record(Result(name, arch, Outcome.INTERRUPTED, message="stopped mid-run"))
        self.running.clear()


def _run_workers(suite: Suite, arches: list[str], jobs: int) -> None:
    """jobs workers (each with its own VM pool) per arch, in threads; on SIGINT or SIGTERM
    stop within STOP_GRACE_S and raise Interrupted."""
    workers = [
        threading.Thread(target=suite.worker, args=(a,), name=f"suite-{a}-{j}", daemon=True)
        for a in arches
        for j in range(jobs)
    ]
    for t in workers:
        t.start()
    try:
        for t in workers:
            while t.is_alive():
                t.join(0.5)  # short joins keep the main thread responsive to signals
                reaper.reraise()  # and a signal swallowed where it landed is not lost
    except KeyboardInterrupt:
        suite.interrupt(workers)
        raise Interrupted(signal.SIGINT, suite.results) from None
    except SystemExit as exc:  # SIGTERM/SIGHUP, raised by lab.reaper's handler
        suite.interrupt(workers)
        code = exc.code if isinstance(exc.code, int) else 128 + signal.SIGTERM
        raise Interrupted(code - 128, suite.results) from None


def summary_table(results: list[Result], arches: list[str], wall: float) -> Table:
    runs = f"{len(results)} run{'' if len(results) == 1 else 's'}"
    table = Table(title=f"remaplab: {runs} in {wall:.1f} s")
    table.add_column("scenario")
    for arch in arches:
        table.add_column(arch)
    by = {(r.scenario, r.arch): r for r in results}
    for name in sorted({r.scenario for r in results}):
        cells = []
        for arch in arches:
            r = by.get((name, arch))
            cells.append(f"[{STYLE[r.outcome]}]{r.outcome.value}[/] {r.seconds:.1f}s" if r else "-")
        table.add_row(name, *cells)
    return table


def run_suite(
    loaded: list[Loaded],
    arches: list[str],
    out_dir: Path,
    log: Log,
    kernel: KernelSpec | None = None,
    accel: str = "auto",
    kept: list[VM] | None = None,
    jobs: int = 1,
    only: Collection[tuple[str, str]] | None = None,
    extra_meta: dict[str, object] | None = None,
    fresh: bool = False,
) -> list[Result]:
    """Run every scenario on every arch with jobs VMs per arch; with kept (--keep), VMs kept
    after failures go there (and the scenarios run one at a time in this thread: a kept VM
    dies with the thread that started it).  only: just these (scenario, arch) pairs (a shard,
    lab/shard.py); extra_meta goes into report.json.  Reports are written even when
    interrupted."""
    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    start = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    interrupted: Interrupted | None = None
    with Progress(*columns, console=console, transient=False) as progress:
        suite = Suite(loaded, out_dir, log, kernel, accel, kept, progress, only=only, fresh=fresh)
        suite.plan(arches)
        reaper.install()  # SIGTERM/SIGHUP -> SystemExit in this (the main) thread
        try:
            if kept is None:
                _run_workers(suite, arches, jobs)
            else:
                for arch in arches:
                    suite.worker(arch)
        except Interrupted as exc:
            interrupted = exc
        except (KeyboardInterrupt, SystemExit) as exc:  # --keep: the scenario ran right here
            suite.interrupt([])
            code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
            interrupted = Interrupted(code - 128, suite.results)
    wall = time.monotonic() - start
    results = sorted(suite.results, key=lambda r: (r.scenario, r.arch))
    console.print(summary_table(results, arches, wall))
    skipped = Counter(f"[{r.arch}] {r.message}" for r in results if r.outcome == Outcome.SKIPPED)
    for reason, count in sorted(skipped.items()):
        console.print(Text(f"skipped {count}x {reason}", style="yellow"))
    for r in results:  # never hidden: e.g. a boot retried after a silent console
        for note in r.notes:
            console.print(Text(f"note: {r.scenario} [{r.arch}]: {note}", style="yellow"))
    meta: dict[str, object] = {"arches": arches, "wall_s": wall, "jobs": jobs, **(extra_meta or {})}
    meta["kernels"] = kernels_by_arch(results)
    if interrupted is not None:
        meta["interrupted"] = str(interrupted)
    write_junit(results, out_dir / "junit.xml")
    write_json(results, out_dir / "report.json", meta)
    console.print(f"reports: {out_dir / 'junit.xml'}, {out_dir / 'report.json'}")
    if interrupted is not None:
        raise interrupted
    return results
