"""`remaplab run`: every selected scenario on every arch, arches in parallel, live progress,
a summary table, JUnit XML and JSON."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from lab.kernel import KernelSpec
from lab.log import Log
from lab.scenario.load import Loaded
from lab.scenario.pool import BootKey
from lab.scenario.report import write_json, write_junit
from lab.scenario.runner import Outcome, Result, VMPool, run_scenario
from lab.scenario.schema import Boot
from lab.steplog import Event, Subscriber
from lab.vm import VM

STYLE = {
    Outcome.PASSED: "green",
    Outcome.SKIPPED: "yellow",
    Outcome.FAILED: "red",
    Outcome.CRASH: "bold red",
    Outcome.BOOT_FAILURE: "bold red",
    Outcome.TIMEOUT: "red",
    Outcome.HANG: "bold red",
    Outcome.LOST: "bold red",
}


def order_for_reuse(loaded: list[Loaded], arch: str) -> list[Loaded]:
    """Group scenarios with the same boot settings so one VM serves them all (default first)."""
    default = BootKey.of(arch, Boot())

    def key(item: Loaded) -> tuple[bool, str, str]:
        boot = BootKey.of(arch, item.scenario.boot)
        return (boot != default, repr(boot), item.scenario.name)

    return sorted(loaded, key=key)


@dataclass
class Suite:
    """One run of the suite: what every arch worker shares."""

    loaded: list[Loaded]
    out_dir: Path
    log: Log
    kernel: KernelSpec | None
    accel: str
    kept: list[VM] | None
    progress: Progress
    results: list[Result] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def subscriber(self, task: TaskID, name: str) -> Subscriber:
        """A step-log subscriber: the progress line shows what the scenario waits on."""

        def show(event: Event) -> None:
            if event.event == "start" and event.step != "scenario":
                what = event.fields.get("kind", event.step)
                self.progress.update(task, description=f"{name}: {what}")

        return show

    def worker(self, arch: str) -> None:
        items = order_for_reuse(self.loaded, arch)
        task = self.progress.add_task(f"{arch:7s}", total=len(items))
        pool = VMPool(self.kernel, self.log, self.accel, keep=self.kept is not None)
        try:
            for item in items:
                name = f"{arch:7s} {item.scenario.name}"
                self.progress.update(task, description=name)
                pool.subscribers = (self.subscriber(task, name),)
                result = run_scenario(item, arch, pool, self.out_dir)
                with self.lock:
                    self.results.append(result)
                if not result.ok:
                    self.progress.console.print(
                        f"[{STYLE[result.outcome]}]{result.scenario} [{arch}]: "
                        f"{result.outcome.value}: {result.message}[/]"
                    )
                self.progress.advance(task)
        finally:
            pool.close()
            if self.kept is not None:
                self.kept.extend(pool.kept)
            else:
                for vm in pool.kept:
                    vm.stop()
        self.progress.update(task, description=f"{arch:7s} done")


def summary_table(results: list[Result], arches: list[str], wall: float) -> Table:
    table = Table(title=f"remaplab: {len(results)} runs in {wall:.1f} s")
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
) -> list[Result]:
    """Run every scenario on every arch; with kept (--keep), VMs kept after failures go there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    start = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        suite = Suite(loaded, out_dir, log, kernel, accel, kept, progress)
        # QEMU dies with the thread that started it (PR_SET_PDEATHSIG): a kept VM must belong
        # to the main thread, so --keep runs the arches one after the other.
        if len(arches) > 1 and kept is None:
            threads = [
                threading.Thread(target=suite.worker, args=(a,), name=f"suite-{a}") for a in arches
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for arch in arches:
                suite.worker(arch)
    wall = time.monotonic() - start
    results = sorted(suite.results, key=lambda r: (r.scenario, r.arch))
    console.print(summary_table(results, arches, wall))
    write_junit(results, out_dir / "junit.xml")
    write_json(results, out_dir / "report.json", {"arches": arches, "wall_s": wall})
    console.print(f"reports: {out_dir / 'junit.xml'}, {out_dir / 'report.json'}")
    return results
