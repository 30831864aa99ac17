"""What a scenario bundle copies of its sources, on layouts that used to end the run with an
internal error: the bundle inside the module folder it copies, links that loop or dangle, a
FIFO."""

from __future__ import annotations

import os
from pathlib import Path

from lab.scenario.bundle import _copy_sources
from lab.scenario.load import load_file


def _repo(tmp_path: Path) -> Path:
    """A driver whose Kbuild is at the repository's root, its scenario in scenarios/ with
    `source: ..`, and the results of a run from the root inside it."""
    repo = tmp_path / "repo"
    (repo / "scenarios").mkdir(parents=True)
    (repo / "Kbuild").write_text("obj-m := d.o\n")
    (repo / "d.c").write_text("/* the driver */\n")
    (repo / "scenarios" / "s.yaml").write_text(
        "name: s\ndescription: d\narches: [x86_64]\nmodules:\n  - source: ..\n"
        "steps:\n  - run: {command: 'true'}\n"
    )
    return repo


def test_a_bundle_inside_the_folder_it_copies_is_left_out_of_the_copy(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    bundle = repo / "results" / "run-1" / "s-x86_64" / "bundle"
    bundle.mkdir(parents=True)
    info = _copy_sources(load_file(repo / "scenarios" / "s.yaml"), bundle, "x86_64")
    copied = bundle / info["sources_base"] / ".."
    assert (copied / "d.c").is_file() and (copied / "Kbuild").is_file()
    assert not (copied / "results").exists()  # not the results, not the bundle inside them
    assert "not_copied" not in info


def test_links_stay_links_and_what_cannot_be_copied_is_listed(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "up").symlink_to("..")  # a loop if followed
    (repo / "gone").symlink_to("nowhere")  # dangling
    (repo / "build").symlink_to("/usr")  # a tree that is not the driver's
    os.mkfifo(repo / "pipe")
    bundle = tmp_path / "bundle"
    info = _copy_sources(load_file(repo / "scenarios" / "s.yaml"), bundle, "x86_64")
    copied = bundle / info["sources_base"] / ".."
    assert (copied / "d.c").is_file()
    assert (copied / "up").is_symlink() and (copied / "gone").is_symlink()
    assert os.readlink(copied / "build") == "/usr"
    assert len(info["not_copied"]) == 1 and "pipe" in info["not_copied"][0]
