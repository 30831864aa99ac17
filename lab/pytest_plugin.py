"""The remaplab pytest plugin (entry point ``pytest11``): every scenario file becomes one test
item per arch, in this repository and in any project that installs remaplab.

Which files: YAML files under the folders named by the ini option ``remaplab_scenarios`` (in
pytest.ini, tox.ini, setup.cfg or ``[tool.pytest.ini_options]``, relative to that file), or, by
default, YAML files in a folder named ``scenarios``.  ``pytest -k cma`` runs the CMA scenarios,
``pytest scenarios/lifecycle-fork.yaml`` one file.

Options: --arch (repeatable), --kernel/--kdir (bring your own), --lab-kernel lab|kasan,
--keep-vm (keep a VM after a failure, print how to reach it, hold it until Ctrl-C).  Results go
to ``results/pytest/NAME-ARCH/`` under pytest's rootdir.

pytest-xdist (``pytest -n N``): every worker is its own process with its own VM pool (one VM
per arch it has run a scenario on); VM work folders, QMP sockets and guest RAM files are
per VM (``lab/vm.py``), forwarded and gdb ports are reserved across processes
(``lab/netutil.py``), the shared caches build under file locks, and each item writes only its
own ``NAME-ARCH`` folder, so workers never share a path.  Scenario items are handed out in
units of one arch and one boot setting, so a worker reuses its VM (``lab/xdist_scopes.py``).
``--keep-vm`` needs a serial run.
pytest-split (``--splits N --group K``) partitions the items by ``.test_durations``;
``remaplab run --shard K/N`` makes the same partition of the same item ids (``lab/shard.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lab.kernel import add_kernel_args
from lab.profiles import arches

if TYPE_CHECKING:
    from lab.scenario.load import Loaded
    from lab.scenario.runner import Result, VMPool

pytest_plugins = ["lab.pytest_signals"]  # SIGINT/SIGTERM: VMs down at once, 130/143
INI_SCENARIOS = "remaplab_scenarios"
SUFFIXES = (".yaml", ".yml")
HOLD_KEPT_S = 3600.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("remaplab")
    group.addoption(
        "--arch", action="append", choices=arches(), help="arch(es) to run scenarios on"
    )
    add_kernel_args(group.addoption)
    group.addoption("--keep-vm", action="store_true", help="keep VMs after a failing scenario")
    parser.addini(
        INI_SCENARIOS,
        "folders of remaplab scenario files (default: YAML files in folders named scenarios)",
        type="paths",
        default=[],
    )


class ScenarioFailure(Exception):
    def __init__(self, result: Result) -> None:
        super().__init__(result.render())
        self.result = result


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from lab.scenario.load import ScenarioError, load_file

        try:
            loaded = load_file(Path(self.path))
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        chosen = self.config.getoption("--arch") or list(arches())
        for arch in chosen:
            yield ScenarioItem.from_parent(
                self, name=f"{loaded.scenario.name}[{arch}]", loaded=loaded, arch=arch
            )


class ScenarioItem(pytest.Item):
    def __init__(self, *, loaded: Loaded, arch: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.loaded = loaded
        self.arch = arch
        self.add_marker(pytest.mark.integration)
        self.add_marker(pytest.mark.scenario)

    def runtest(self) -> None:
        from lab.errors import LabError
        from lab.kernel import KernelSpec
        from lab.scenario.runner import Outcome, Result, VMPool, run_scenario

        pools: dict[str, VMPool] = self.config.stash[POOLS]
        if self.arch not in pools:
            pools[self.arch] = VMPool(
                KernelSpec.from_options(self.config.getoption),
                keep=self.config.getoption("--keep-vm"),
            )
        out = results_dir(self.config)
        try:
            result = run_scenario(self.loaded, self.arch, pools[self.arch], out)
            if result.kernel:  # --junitxml writes it: report merge compares shards' kernels
                self.user_properties.append(("kernel", result.kernel))
        except LabError as exc:
            failed = Result(self.loaded.scenario.name, self.arch, Outcome.FAILED, message=str(exc))
            raise ScenarioFailure(failed) from None
        if result.outcome == Outcome.SKIPPED:
            # reported at the scenario file (as a skipif mark is), not at this line
            raise pytest.skip.Exception(result.message, _use_item_location=True)
        if result.outcome != Outcome.PASSED:
            raise ScenarioFailure(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return excinfo.value.result.render()
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return Path(self.path), 0, f"scenario {self.name}"


POOLS = pytest.StashKey[dict[str, "VMPool"]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[POOLS] = {}
    if config.getoption("--keep-vm", False) and distributed(config):
        raise pytest.UsageError(
            "--keep-vm holds the kept VMs until Ctrl-C: run serially (without -n)"
        )
    config.addinivalue_line("markers", "integration: boots real QEMU guests (slow)")
    config.addinivalue_line("markers", "scenario: a remaplab scenario file")


def pytest_unconfigure(config: pytest.Config) -> None:
    pools = config.stash.get(POOLS, {})
    if not pools:
        return  # no scenario ran: nothing to stop, and no need to import the runner
    from lab.scenario.runner import hold_kept

    kept = []
    for pool in pools.values():
        pool.close()
        kept += pool.kept
    if kept:
        hold_kept(kept, HOLD_KEPT_S, print)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest -n N (--dist load or loadgroup): scenario items go to workers in units of one
    arch and one boot setting, so each worker's VM is reused (lab/xdist_scopes.py)."""
    if config.getoption("dist", None) not in ("load", "loadgroup"):
        return None
    from lab.xdist_scopes import ScenarioScheduling

    return ScenarioScheduling(config, log)


def distributed(config: pytest.Config) -> bool:
    """Whether pytest-xdist runs the tests in worker processes (-n N, N > 0)."""
    return bool(getattr(config.option, "numprocesses", None)) or hasattr(config, "workerinput")


def results_dir(config: pytest.Config) -> Path:
    """Where scenario items leave their results: one NAME-ARCH folder each (never shared,
    whichever xdist worker runs the item)."""
    return Path(config.rootpath) / "results" / "pytest"


def is_scenario_file(config: pytest.Config, file_path: Path) -> bool:
    """In a scenario folder (the ini option's, else one named scenarios), or named on the
    command line itself (pytest negative/bug1.yaml)."""
    if file_path.suffix not in SUFFIXES:
        return False
    base = Path(config.invocation_params.dir)
    if any((base / arg.split("::")[0]).resolve() == file_path.resolve() for arg in config.args):
        return True
    folders: list[Path] = config.getini(INI_SCENARIOS)
    if folders:
        return any(file_path.resolve().is_relative_to(f.resolve()) for f in folders)
    return file_path.parent.name == "scenarios"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if is_scenario_file(parent.config, file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A session that collected scenarios splits (pytest --splits N --group K) as `remaplab run
    --shard K/N` does, by pytest-split's least_duration, unless the user chose an algorithm
    (its own default, duration_based_chunks, gives other shards).  Runs before pytest-split's
    own hook (trylast)."""
    if not hasattr(config.option, "splitting_algorithm"):
        return  # pytest-split is not installed
    if not any(isinstance(item, ScenarioItem) for item in items):
        return  # someone else's suite: not ours to change
    given = [*config.invocation_params.args, *config.getini("addopts")]
    given += os.environ.get("PYTEST_ADDOPTS", "").split()
    if not any(str(arg).startswith("--splitting-algorithm") for arg in given):
        config.option.splitting_algorithm = "least_duration"
