"""`remaplab run`: every selected scenario on every arch, arches in parallel, live progress,
a summary table, JUnit XML and JSON."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lab.log import Log
from lab.scenario.load import Loaded
from lab.scenario.report import write_json, write_junit
from lab.scenario.runner import Outcome, Result, VMPool, boot_key, run_scenario
from lab.scenario.schema import Boot
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
    default = boot_key(arch, Boot())

    def key(item: Loaded) -> tuple[bool, str, str]:
        boot = boot_key(arch, item.scenario.boot)
        return (boot != default, repr(boot), item.scenario.name)

    return sorted(loaded, key=key)


def run_suite(
    loaded: list[Loaded],
    arches: list[str],
    out_dir: Path,
    pool_args: dict[str, object],
    log: Log,
    kept: list[VM] | None = None,
) -> list[Result]:
    """Run every scenario on every arch; VMs kept after failures (--keep) go to kept."""
    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    results: list[Result] = []
    lock = threading.Lock()
    start = time.monotonic()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:

        def worker(arch: str) -> None:
            items = order_for_reuse(loaded, arch)
            task = progress.add_task(f"{arch:7s}", total=len(items))
            pool = VMPool(log=log, **pool_args)  # type: ignore[arg-type]
            try:
                for item in items:
                    progress.update(task, description=f"{arch:7s} {item.scenario.name}")
                    result = run_scenario(item, arch, pool, out_dir)
                    with lock:
                        results.append(result)
                    if result.outcome not in (Outcome.PASSED, Outcome.SKIPPED):
                        progress.console.print(
                            f"[{STYLE[result.outcome]}]{result.scenario} [{arch}]: "
                            f"{result.outcome.value}: {result.message}[/]"
                        )
                    progress.advance(task)
            finally:
                pool.close()
                if kept is not None:
                    kept.extend(pool.kept)
                else:
                    for vm in pool.kept:
                        vm.stop()
            progress.update(task, description=f"{arch:7s} done")

        # QEMU dies with the thread that started it (PR_SET_PDEATHSIG): a kept VM must belong
        # to the main thread, so --keep runs the arches one after the other.
        if len(arches) > 1 and not pool_args.get("keep"):
            threads = [
                threading.Thread(target=worker, args=(a,), name=f"suite-{a}") for a in arches
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for arch in arches:
                worker(arch)
    wall = time.monotonic() - start
    results.sort(key=lambda r: (r.scenario, r.arch))
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
    console.print(table)
    write_junit(results, out_dir / "junit.xml")
    write_json(results, out_dir / "report.json", {"arches": arches, "wall_s": wall})
    console.print(f"reports: {out_dir / 'junit.xml'}, {out_dir / 'report.json'}")
    return results
