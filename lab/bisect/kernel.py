"""The kernel at a bisect step: built from the worktree into ONE out-of-tree build directory per
(tree, arch), kept across steps and bisections, so a step after a small change rebuilds only
what changed; with ccache (if installed) the compiler's results are cached too, under the lab's
cache (CCACHE_DIR), which also serves a later bisection of the same tree."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lab.cache import hash_strings
from lab.kernel import Kernel
from lab.kernel.byo import path_kernel
from lab.kernel.labbuild import Source, compile_kernel, configure, fragments
from lab.kernel.userconfig import report_dropped, user_fragments
from lab.log import Log, stderr_log
from lab.paths import cache_dir
from lab.profiles import Profile


@dataclass(frozen=True)
class Built:
    kernel: Kernel
    seconds: float  # configure + make, this step


def ccache() -> str | None:
    """ccache's path, with its cache set under the lab's cache dir; None when not installed."""
    path = shutil.which("ccache")
    if path is not None:
        os.environ.setdefault("CCACHE_DIR", str(cache_dir() / "ccache"))
    return path


def build_dir(repo: Path, profile: Profile) -> Path:
    out = cache_dir() / "bisect-build" / f"{hash_strings([str(repo)])[:16]}-{profile.arch}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def build_step(
    profile: Profile,
    tree: Path,
    out: Path,
    commit: str,
    user_config: Path | None = None,
    jobs: int = 2,
    log: Log = stderr_log,
) -> Built:
    """Configure (the lab's config, or the user's + the boot essentials) and build tree in out.
    A LabError when it does not configure or build (the step is then skipped)."""
    files = fragments(profile, "lab") if user_config is None else user_fragments(profile)
    logfile = out.parent / f"{out.name}-{commit[:12]}.log"
    logfile.write_text("")
    start = time.monotonic()
    src = Source(tree, f"{tree} @ {commit[:12]}", commit)
    cc = ccache()
    dropped = configure(profile, src, out, files, logfile, user_config, ccache=cc)
    if user_config is not None:
        report_dropped(dropped, user_config, log)
    image = compile_kernel(profile, tree, out, jobs, logfile, f"building {commit[:12]}", cc)
    seconds = time.monotonic() - start
    kernel = path_kernel(profile, image, out, log)
    identity = f"{commit[:12]} built in {out}"
    return Built(dataclasses.replace(kernel, identity=identity), seconds)
