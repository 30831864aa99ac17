"""remaplab's build step: the lab's non-Python sources (the multimap module, the guest's start-up
files and tools, the scenario library) go into the wheel as lab/_tree/, where lab/paths.py finds
them in an installed copy.  An editable install uses the checkout itself.  Everything else is in
pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What the lab builds or reads at run time, per top-level folder (build products excluded).
TREES = {
    "module": ("Kbuild", "Makefile", "*.c", "*.h", "uapi/*.h"),
    "rootfs": ("init.c", "packages.toml", "etc/*", "tools/*.c", "tools/*.h"),
    "scenarios": ("*.yaml",),
}


class BuildPyWithTree(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        tree = Path(self.build_lib, "lab", "_tree")
        shutil.rmtree(tree, ignore_errors=True)  # nothing stale from an earlier build
        for name, patterns in TREES.items():
            for pattern in patterns:
                for src in sorted((ROOT / name).glob(pattern)):
                    if src.is_file():
                        rel = src.relative_to(ROOT)
                        dst = tree / rel
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(src, dst)  # with its mode


setup(cmdclass={"build_py": BuildPyWithTree})
