"""Symbolic links inside an extracted Debian root are followed inside it, never to the host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.elfdeps import resolve_in
from lab.errors import LabError


def tree(root: Path) -> None:
    (root / "lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").write_bytes(b"guest loader")
    (root / "lib64").mkdir()
    # as Debian's libc6 ships it: an absolute link
    os.symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", root / "lib64/ld-linux-x86-64.so.2")
    (root / "usr/lib").mkdir(parents=True)
    os.symlink("../../lib/x86_64-linux-gnu", root / "usr/lib/x86_64-linux-gnu")  # a dir link
    os.symlink("/bin/sh", root / "lib/sh")  # exists on the host, not in the root


def test_absolute_links_stay_inside_the_root(tmp_path: Path) -> None:
    tree(tmp_path)
    loader = resolve_in(tmp_path, "lib64/ld-linux-x86-64.so.2")
    assert loader == tmp_path / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert loader.read_bytes() == b"guest loader"
    assert Path("/lib64/ld-linux-x86-64.so.2").resolve() != loader  # what resolve() gave
    assert resolve_in(tmp_path, "/lib/sh") == tmp_path / "bin/sh"  # not the host's shell
    assert not resolve_in(tmp_path, "lib/sh").exists()


def test_relative_links_dots_and_directories(tmp_path: Path) -> None:
    tree(tmp_path)
    via_dir = resolve_in(tmp_path, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    assert via_dir.read_bytes() == b"guest loader"
    assert resolve_in(tmp_path, "lib/./../lib64/../../..//lib64") == tmp_path / "lib64"
    assert resolve_in(tmp_path, "no/such/file") == tmp_path / "no/such/file"


def test_a_link_loop_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("/a", tmp_path / "b")
    with pytest.raises(LabError, match="more than 40 symbolic links"):
        resolve_in(tmp_path, "a")
