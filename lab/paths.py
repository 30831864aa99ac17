"""Where remaplab keeps its caches and where the lab's own sources live."""

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
DATA = PACKAGE / "data"


def source_tree() -> Path:
    """The lab's non-Python sources (module/, rootfs/, scenarios/): lab/_tree/ in an installed
    wheel (setup.py puts them there), else the checkout this package lives in."""
    installed = PACKAGE / "_tree"
    return installed if installed.is_dir() else PACKAGE.parent


def is_module_folder(path: Path) -> bool:
    """Whether path is an out-of-tree module's folder (Kbuild's way in: a Kbuild or Makefile)."""
    return path.is_dir() and any((path / name).is_file() for name in ("Kbuild", "Makefile"))


REPO = source_tree()
ROOTFS_SRC = REPO / "rootfs"
MODULE_SRC = REPO / "module"


def cache_dir() -> Path:
    """The shared cache: $REMAPLAB_CACHE, else $XDG_CACHE_HOME/remaplab, else ~/.cache/remaplab."""
    env = os.environ.get("REMAPLAB_CACHE")
    if env:
        path = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "remaplab"
    path.mkdir(parents=True, exist_ok=True)
    return _writable(path)


def run_dir() -> Path:
    """Per-run scratch space (sockets, console logs) under the cache."""
    path = cache_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return _writable(path)


def _writable(path: Path) -> Path:
    """path, or a LabError when this user cannot write it (e.g. made by an earlier run as
    root): the cache is per user."""
    if not os.access(path, os.W_OK | os.X_OK):
        from lab.errors import LabError

        raise LabError(
            f"{path} is not writable by this user (made by a run as another user, e.g. root?): "
            f"give it back (`sudo chown -R $(id -un) {path}`) or set REMAPLAB_CACHE"
        )
    return path
