"""Testing one commit: build what the test depends on from the worktree, run the test N times,
and reduce each run to its failure signature (None: the run passed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lab.bisect.decide import Observation
from lab.bisect.kernel import build_step
from lab.errors import LabError
from lab.kernel import Kernel, KernelSpec
from lab.log import Log, stderr_log
from lab.paths import is_module_folder
from lab.profiles import get_profile
from lab.reproduce.outcome import BOOT_FAILURE, CRASH, ERROR, RunRecord
from lab.scenario.load import Loaded, load_file


def is_kernel_tree(path: Path) -> bool:
    return all((path / p).exists() for p in ("Makefile", "Kconfig", "arch", "kernel"))


@dataclass
class Test:
    path: Path  # a .c reproducer or a scenario .yaml
    arch: str
    runs: int
    repo: Path  # the repository's top level
    out: Path  # the bisection's log folder
    spec: KernelSpec = field(default_factory=KernelSpec)  # the kernel when repo is not one
    timeout: float = 300.0
    config: Path | None = None  # the user's .config for the kernel tree
    binary: Path | None = None  # the compiled reproducer (C tests)

    @property
    def is_c(self) -> bool:
        return self.path.suffix == ".c"

    @property
    def kernel_tree(self) -> bool:
        return is_kernel_tree(self.repo)


def run_signature(titles: list[str], original: str | None) -> str:
    """A crashing run's signature: the original title if it is among the run's, else its first."""
    return original if original is not None and original in titles else titles[0]


def retarget(loaded: Loaded, repo: Path, tree: Path, need_module: bool) -> Loaded:
    """The scenario with its paths into repo pointed at the worktree: the whole scenario when
    its folder lies in repo, else each module source that resolves into repo."""
    folder = loaded.folder.resolve()
    if folder.is_relative_to(repo):
        return Loaded(loaded.scenario, loaded.path, loaded.text, tree / folder.relative_to(repo))
    modules, moved = [], 0
    for m in loaded.scenario.modules:
        src = (folder / m.source).resolve() if m.source is not None else None
        if src is not None and src.is_relative_to(repo):
            moved_to = os.path.relpath(
                tree / src.relative_to(repo), folder
            )  # bundles need it relative
            m = m.model_copy(update={"source": moved_to})
            moved += 1
        modules.append(m)
    if need_module and not moved:
        raise LabError(
            f"{loaded.path}: none of its modules' sources lies in {repo}; bisecting {repo} "
            "cannot change what the scenario runs"
        )
    scenario = loaded.scenario.model_copy(update={"modules": modules})
    return Loaded(scenario, loaded.path, loaded.text, folder)


def _c_runs(test: Test, kernel: Kernel, original: str | None, log: Log) -> Observation:
    from lab.build import guest_extras
    from lab.reproduce.session import Request, run_on
    from lab.rootfs import build_initramfs

    assert test.binary is not None
    initramfs = build_initramfs(kernel, tuple(guest_extras(kernel, log)), log)
    request = Request(test.arch, test.path, test.runs, 1, test.timeout)
    try:
        records = run_on(request, kernel, initramfs, test.binary, None, log).records
    except LabError as exc:
        return Observation(booted=False, problem=str(exc).splitlines()[0])
    return _observed(records, original)


def _observed(records: list[RunRecord], original: str | None) -> Observation:
    runs: list[str | None] = []
    for r in records:
        if r.outcome in (BOOT_FAILURE, ERROR):
            continue
        runs.append(run_signature(r.titles, original) if r.outcome == CRASH else None)
    if not runs:
        return Observation(booted=False, problem=records[-1].detail if records else "no run")
    return Observation(runs=tuple(runs))


def _scenario_runs(test: Test, loaded: Loaded, spec: KernelSpec, step: Path) -> Observation:
    from lab.scenario.bundle import signature
    from lab.scenario.result import Outcome
    from lab.scenario.runner import VMPool, run_scenario

    pool = VMPool(spec, stderr_log)
    runs: list[str | None] = []
    try:
        for n in range(1, test.runs + 1):
            result = run_scenario(loaded, test.arch, pool, step / f"run-{n}")
            if result.outcome == Outcome.BUILD_FAILURE:
                return Observation(built=False, problem=result.message.splitlines()[0])
            if result.outcome in (Outcome.BOOT_FAILURE, Outcome.SETUP_ERROR):
                return Observation(booted=False, problem=result.message.splitlines()[0])
            if result.outcome == Outcome.SKIPPED:
                raise LabError(f"{loaded.path} skipped on this kernel: {result.message}")
            runs.append(None if result.ok else signature(result.as_dict()))
    finally:
        pool.close()
    return Observation(runs=tuple(runs))


def observe(
    test: Test, tree: Path, commit: str, original: str | None, log: Log = stderr_log
) -> tuple[Observation, float | None]:
    """The test's observation at commit (checked out in tree) and the kernel build's seconds
    (None when the kernel is not built from the tree)."""
    step = test.out / f"commit-{commit[:12]}"
    step.mkdir(parents=True, exist_ok=True)
    spec, kernel, seconds = test.spec, None, None
    if test.kernel_tree:
        from lab.bisect.kernel import build_dir

        profile = get_profile(test.arch)
        try:
            built = build_step(profile, tree, build_dir(test.repo, profile), commit, test.config)
        except LabError as exc:
            return Observation(built=False, problem=str(exc).splitlines()[0]), None
        kernel, seconds = built.kernel, built.seconds
        log(f"{commit[:12]}: kernel built in {seconds:.0f} s")
        spec = KernelSpec(image=kernel.image, kdir=kernel.kdir)
    if test.is_c and kernel is not None:
        return _c_runs(test, kernel, original, log), seconds
    if test.is_c:  # a module's repository: the wrapper builds it from the worktree itself
        loaded = c_wrapper(test, tree)
    else:
        loaded = retarget(load_file(test.path), test.repo, tree, not test.kernel_tree)
    return _scenario_runs(test, loaded, spec, step), seconds


WRAPPER = "bisect-c-wrapper"
MAX_SCENARIO_S = 3600.0  # a scenario's timeout at most (its schema)


def c_wrapper(test: Test, tree: Path) -> Loaded:
    """A C reproducer over a module's repository: the scenario that builds and loads the module
    from the worktree's top level (the commit under test), then runs the program, which must
    exit 0 within --timeout (a non-zero status or a kernel report is the failure).  Written
    into the log folder, to be read."""
    if not is_module_folder(test.repo):
        raise LabError(
            f"{test.repo}: no Kbuild or Makefile at its top level: a C reproducer bisects a "
            "kernel tree, or a module built from the repository's top level; for a module "
            "elsewhere in it, bisect a scenario: modules: [{source: PATH}] and steps: "
            "[{program: {source: REPRO.c}}]"
        )
    scenario = {
        "name": WRAPPER,
        "description": f"{test.path.name} with the module built from {test.repo} at each commit",
        "arches": [test.arch],
        "modules": [{"source": str(tree)}],
        "steps": [
            {
                "program": {
                    "source": str(test.path),
                    "status": 0,
                    "timeout": min(test.timeout, MAX_SCENARIO_S),  # bisect's --timeout
                }
            }
        ],
        "timeout": min(test.timeout + 60.0, MAX_SCENARIO_S),  # the program's, and its setup
    }
    path = test.out / f"{WRAPPER}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return load_file(path)
