"""A small kernel history for the bisect tests: a local git repository of Debian's
linux-source-6.1 (the lab's extracted copy) and four commits on top, the second of which adds
two prctl options that WARN (one always, one with probability 1/2).  Cached under the lab's
cache; made once (a copy of the tree and a git import: a few minutes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

from lab.kernel.labbuild import Source, debian_source
from lab.log import stderr_log
from lab.paths import cache_dir

VERSION = "1"
ANCHOR = "\tcase PR_SET_VMA:\n\t\terror = prctl_set_vma(arg2, arg3, arg4, arg5);\n\t\tbreak;\n"
BUG = """\tcase 0x52454d41: /* remaplab bisect test: always */
\t\tWARN(1, "remaplab: injected bug\\n");
\t\terror = 0;
\t\tbreak;
\tcase 0x52454d42: /* remaplab bisect test: one call in two */
\t\tWARN(get_random_u32() & 1, "remaplab: injected flaky bug\\n");
\t\terror = 0;
\t\tbreak;
"""
SUBJECTS = (
    "sys: say where prctl's options are documented",
    "prctl: add the remaplab test options",
    "sys: comment the getcpu syscall",
    "sys: comment the end of prctl",
)


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    argv = ["git", "-C", str(repo), "-c", "core.looseCompression=1", *args]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}{proc.stdout.strip()[-2000:]}")
    return proc.stdout.strip()


def _edit(sys_c: Path, step: int) -> None:
    text = sys_c.read_text()
    if step == 1:
        text = text.replace(
            "SYSCALL_DEFINE5(prctl,",
            "/* prctl: see Documentation/userspace-api */\nSYSCALL_DEFINE5(prctl,",
            1,
        )
    elif step == 2:
        assert ANCHOR in text
        text = text.replace(ANCHOR, ANCHOR + BUG, 1)
    elif step == 3:
        text = text.replace("SYSCALL_DEFINE3(getcpu,", "/* getcpu */\nSYSCALL_DEFINE3(getcpu,", 1)
    else:
        text = text.replace(
            "\treturn error;\n}\n\n/* getcpu */",
            "\treturn error;\n}\n/* end of prctl */\n\n/* getcpu */",
            1,
        )
    sys_c.write_text(text)


def kernel_history() -> tuple[Path, list[str]]:
    """(the repository, its five commits: base, then SUBJECTS in order).  Not a cache Entry:
    a git repository changes under its own feet (worktrees, packs), which an Entry's manifest
    would call corruption; made in a temporary folder and renamed into place, under a lock."""
    src = debian_source(stderr_log)
    root = cache_dir() / "test-data" / f"kernel-history-{VERSION}-{src.key}"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock", timeout=3600):
        if not (root / "commits.json").is_file():
            tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                _make(src, tmp)
                shutil.rmtree(root, ignore_errors=True)
                os.replace(tmp, root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return root / "linux", json.loads((root / "commits.json").read_text())


def _make(src: Source, tmp: Path) -> None:
    repo = tmp / "linux"
    stderr_log(f"making a git history of {src.identity} (once)")
    shutil.copytree(src.tree, repo, symlinks=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "gc.auto", "0")
    _git(repo, "add", "-A", "-f")  # Debian's .gitignore ignores the top level
    _git(repo, "commit", "-q", "-m", f"import {src.identity}")
    commits = [_git(repo, "rev-parse", "HEAD")]
    for step, subject in enumerate(SUBJECTS, start=1):
        _edit(repo / "kernel/sys.c", step)
        _git(repo, "commit", "-q", "-a", "-m", subject)
        commits.append(_git(repo, "rev-parse", "HEAD"))
    (tmp / "commits.json").write_text(json.dumps(commits))


if __name__ == "__main__":
    print(kernel_history())
