"""git for the bisection: a detached worktree of the user's repository (under the cache), and
``git bisect`` driven step by step in it.  The user's checkout, index and branch never move:
bisect state (refs/bisect/*, BISECT_LOG) is per worktree."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.cache import hash_strings
from lab.errors import LabError
from lab.paths import cache_dir

GIT_TIMEOUT_S = 600.0  # a worktree checkout of a kernel tree writes ~80k files
FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
ONLY_SKIPPED = "There are only 'skip'ped commits left to test"


def git(repo: Path, *args: str, check: bool = True) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"git {' '.join(args)} did not finish in {GIT_TIMEOUT_S:.0f} s") from None
    if check and proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"git {' '.join(args)} in {repo} failed: {said[-1] if said else '?'}")
    return proc.stdout + proc.stderr


def resolve(repo: Path, rev: str) -> str:
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False).strip()
    if not re.fullmatch(r"[0-9a-f]{40}", out):
        raise LabError(f"{rev!r} is not a commit of {repo}")
    return out


def subject(repo: Path, rev: str) -> str:
    return git(repo, "log", "-1", "--format=%s", rev).strip()


def toplevel(repo: Path) -> Path:
    if not repo.is_dir():
        raise LabError(f"--repo {repo}: not a folder")
    out = git(repo, "rev-parse", "--show-toplevel", check=False).strip()
    if not out or not Path(out).is_dir():
        raise LabError(f"--repo {repo}: not a git repository")
    return Path(out).resolve()


def worktree_path(repo: Path) -> Path:
    """One worktree per repository, at a stable path (so one build directory and ccache's
    entries serve every bisection of that tree)."""
    return cache_dir() / "bisect" / hash_strings([str(repo)])[:16] / "tree"


class Worktree:
    """A detached worktree at rev.  It is kept (under the cache, registered in the user's
    repository: `git worktree list` shows it) for the next bisection of the same tree: its files
    then keep their mtimes where the commits agree, so the kept build directory rebuilds only
    what changed.  Bisect state is reset at the end on every path."""

    def __init__(self, repo: Path, rev: str) -> None:
        self.repo, self.rev = repo, rev
        self.path = worktree_path(repo)

    def _reusable(self) -> bool:
        if not (self.path / ".git").is_file():
            return False
        common = git(self.path, "rev-parse", "--git-common-dir", check=False).strip()
        mine = git(self.repo, "rev-parse", "--git-common-dir", check=False).strip()
        return bool(common) and (self.path / common).resolve() == (self.repo / mine).resolve()

    def __enter__(self) -> Worktree:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._reusable():
            git(self.path, "bisect", "reset", check=False)  # left by an interrupted run
            git(self.path, "checkout", "--quiet", "--detach", "--force", self.rev)
            git(self.path, "clean", "-fdxq")
            return self
        if self.path.exists():
            git(self.repo, "worktree", "remove", "--force", str(self.path), check=False)
            shutil.rmtree(self.path, ignore_errors=True)
        git(self.repo, "worktree", "prune")
        git(self.repo, "worktree", "add", "--detach", "--force", str(self.path), self.rev)
        return self

    def __exit__(self, *_exc: object) -> None:
        git(self.path, "bisect", "reset", check=False)

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD").strip()


@dataclass(frozen=True)
class Outcome:
    """After a `git bisect` command: done with a culprit, done with only skipped commits
    left (candidates), or a next commit checked out."""

    culprit: str | None = None
    candidates: tuple[str, ...] = ()
    finished: bool = False


def parse(output: str) -> Outcome:
    if m := FIRST_BAD.search(output):
        return Outcome(culprit=m.group(1), finished=True)
    if ONLY_SKIPPED in output:
        found = re.findall(r"^([0-9a-f]{40})\b", output, re.M)
        return Outcome(candidates=tuple(found), finished=True)
    return Outcome()
