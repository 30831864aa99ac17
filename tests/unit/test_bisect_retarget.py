"""A scenario under bisection reads its module from the worktree, never the user's checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.bisect.probe import is_kernel_tree, retarget
from lab.errors import LabError
from lab.scenario.load import load_file

SCENARIO = """name: m
description: a module from the repository
arches: [x86_64]
modules:
  - source: {source}
steps:
  - run: {{command: "true"}}
"""


def _setup(tmp: Path, source: str, inside: bool) -> tuple[Path, Path, Path]:
    repo, tree = tmp / "repo", tmp / "tree"
    for root in (repo, tree):
        (root / "mod").mkdir(parents=True)
        (root / "mod/Kbuild").write_text("obj-m += x.o\n")
    folder = repo / "scen" if inside else tmp / "scen"
    folder.mkdir()
    (folder / "m.yaml").write_text(SCENARIO.format(source=source))
    return repo, tree, folder / "m.yaml"


def test_a_module_outside_the_scenario_folder_is_pointed_at_the_worktree(tmp_path: Path) -> None:
    repo, tree, path = _setup(tmp_path, "../repo/mod", inside=False)
    moved = retarget(load_file(path), repo, tree, need_module=True)
    source = moved.scenario.modules[0].source
    assert source is not None and not os.path.isabs(source)  # bundles copy relative paths
    assert (moved.folder / source).resolve() == (tree / "mod").resolve()


def test_a_scenario_inside_the_repository_runs_wholly_from_the_worktree(tmp_path: Path) -> None:
    repo, tree, path = _setup(tmp_path, "../mod", inside=True)
    moved = retarget(load_file(path), repo, tree, need_module=True)
    assert moved.folder == tree / "scen"


def test_a_scenario_whose_modules_are_elsewhere_is_refused(tmp_path: Path) -> None:
    _repo, tree, path = _setup(tmp_path, "../repo/mod", inside=False)
    with pytest.raises(LabError, match="cannot change what the scenario runs"):
        retarget(load_file(path), tmp_path / "other", tree, need_module=True)


def test_kernel_tree_detection(tmp_path: Path) -> None:
    assert not is_kernel_tree(tmp_path)
    for name in ("Makefile", "Kconfig"):
        (tmp_path / name).write_text("")
    (tmp_path / "arch").mkdir()
    (tmp_path / "kernel").mkdir()
    assert is_kernel_tree(tmp_path)


def test_the_c_wrapper_builds_the_worktrees_module_wherever_its_log_is(tmp_path: Path) -> None:
    """The wrapper's log folder may lie inside the repository (run from the driver's checkout):
    the module still comes from the worktree of the commit under test, paths with YAML's own
    characters load, and the program gets bisect's --timeout."""
    from lab.bisect.probe import Test, c_wrapper

    repo = tmp_path / "my: drv [x]"
    repo.mkdir()
    (repo / "Kbuild").write_text("obj-m += m.o\n")
    out = repo / "results" / "bisect-1"
    out.mkdir(parents=True)
    tree = tmp_path / "tree"  # the worktree, at the commit under test
    tree.mkdir()
    (tree / "Kbuild").write_text("obj-m += m.o\n")
    repro = tmp_path / "[r]: x.c"
    repro.write_text("int main(void) { return 0; }\n")
    test = Test(path=repro, arch="x86_64", runs=1, repo=repo, out=out, timeout=900.0)
    loaded = c_wrapper(test, tree)
    assert [m.source for m in loaded.scenario.modules] == [str(tree)]
    program = loaded.scenario.steps[0].program  # type: ignore[union-attr]
    assert program is not None and program.source == str(repro) and program.timeout == 900.0
