"""remaplab bisect on real histories: a module's (cheap: a local repository of five commits, the
third of which breaks the module; also a flaky variant found with --runs) and a kernel's (a local
repository of Debian's linux-source-6.1 with four commits, one of which adds a WARN that a
prctl option reaches; the build directory is reused between steps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REMAPLAB = [sys.executable, "-m", "lab.cli"]
GOOD_INIT = '\tpr_info("bisectmod: loaded\\n");\n\treturn 0;\n'
BUGGY_INIT = '\tWARN(1, "bisectmod: broken\\n");\n' + GOOD_INIT
FLAKY_INIT = '\tWARN(get_random_u32() & 3, "bisectmod: broken\\n");\n' + GOOD_INIT
SOURCE = """// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include <linux/random.h>
/* revision: {rev} */
static int __init bisectmod_init(void)
{{
{init}}}

static void __exit bisectmod_exit(void)
{{
}}

module_init(bisectmod_init);
module_exit(bisectmod_exit);
MODULE_LICENSE("GPL");
"""
SCENARIO = """name: bisectmod
description: load the module under bisection, then run a command
arches: [x86_64]
modules:
  - source: ../repo/mod
steps:
  - run: {command: "true"}
"""


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def module_history(tmp: Path, buggy: str) -> tuple[Path, list[str]]:
    """Five commits; the third one puts `buggy` into the module's init."""
    repo = tmp / "repo"
    (repo / "mod").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "mod/Kbuild").write_text("obj-m += bisectmod.o\n")
    commits = []
    for rev in range(1, 6):
        init = buggy if rev >= 3 else GOOD_INIT
        (repo / "mod/bisectmod.c").write_text(SOURCE.format(rev=rev, init=init))
        _git(repo, "add", "mod")
        what = "break the init" if rev == 3 else f"revision {rev}"
        _git(repo, "commit", "-q", "-m", f"bisectmod: {what}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    (tmp / "scen").mkdir()
    (tmp / "scen/bisectmod.yaml").write_text(SCENARIO)
    return repo, commits


def _bisect(tmp: Path, repo: Path, good: str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [*REMAPLAB, "bisect", str(tmp / "scen/bisectmod.yaml"), "--repo", str(repo)]
    argv += ["--good", good, "--bad", "main", "--out", str(tmp / "log"), "--json", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)


def _checkout_state(repo: Path) -> tuple[str, str, str, str]:
    files = (repo / "mod/bisectmod.c").read_text()
    return (
        _git(repo, "rev-parse", "HEAD"),
        _git(repo, "status", "--porcelain"),
        _git(repo, "branch", "--show-current"),
        files,
    )


def test_module_bisect_names_the_commit_that_broke_it(tmp_path: Path) -> None:
    repo, commits = module_history(tmp_path, BUGGY_INIT)
    before = _checkout_state(repo)
    res = _bisect(tmp_path, repo, commits[0])
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert data["culprit"] == commits[2]
    assert data["subject"] == "bisectmod: break the init"
    assert "WARNING" in data["signature"] and "bisectmod" in data["signature"]
    verdicts = {s["commit"]: s["verdict"] for s in data["steps"]}
    assert verdicts[commits[4]] == "bad" and verdicts[commits[0]] == "good"
    assert len(data["steps"]) >= 3
    assert (tmp_path / "log/bisect.log").read_text().count("first bad commit") == 1
    # The user's checkout, branch and working files never moved; the bisect state is gone
    # (the worktree is kept under the cache for the next bisection, detached, at the bad commit)
    assert _checkout_state(repo) == before
    worktrees = _git(repo, "worktree", "list", "--porcelain")
    assert worktrees.count("worktree ") == 2 and "remaplab/bisect" in worktrees
    assert "refs/bisect" not in _git(repo, "for-each-ref")
    assert not (repo / ".git/BISECT_LOG").exists()


def test_flaky_module_bug_is_found_with_runs(tmp_path: Path) -> None:
    """The WARN fires with probability 3/4; 6 runs per commit miss it with p = 1/4096 each (at
    1/2, p = 1/64, it missed once in a clean-clone CI run: 0/6 at the bad end)."""
    repo, commits = module_history(tmp_path, FLAKY_INIT)
    res = _bisect(tmp_path, repo, commits[0], "--runs", "6")
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert data["culprit"] == commits[2]
    bad_runs = [s["runs"] for s in data["steps"] if s["verdict"] == "bad"]
    assert bad_runs and all(len(r) == 6 for r in bad_runs)


def test_bisect_refuses_a_bad_commit_that_does_not_fail(tmp_path: Path) -> None:
    repo, commits = module_history(tmp_path, BUGGY_INIT)
    argv = [*REMAPLAB, "bisect", str(tmp_path / "scen/bisectmod.yaml"), "--repo", str(repo)]
    argv += ["--good", commits[0], "--bad", commits[1], "--out", str(tmp_path / "log")]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    assert res.returncode == 125, res.stderr[-2000:]
    assert "does not show a failure" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("args", [["--good", "nosuchrev"], ["--runs", "0"]])
def test_bisect_user_errors_are_one_line(tmp_path: Path, args: list[str]) -> None:
    repo, commits = module_history(tmp_path, BUGGY_INIT)
    argv = [*REMAPLAB, "bisect", str(tmp_path / "scen/bisectmod.yaml"), "--repo", str(repo)]
    argv += ["--bad", "main", *(args if "--good" in args else ["--good", commits[0], *args])]
    res = subprocess.run(
        argv, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert res.returncode == 125
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "results").exists()  # refused before any log folder


REPRO = Path(__file__).resolve().parents[1] / "data/repro"


@pytest.fixture(scope="module")
def kernel_repo() -> tuple[Path, list[str]]:
    from tests.integration.kernel_history import kernel_history

    return kernel_history()


def _kernel_bisect(
    tmp: Path, repo: Path, commits: list[str], repro: str, *extra: str
) -> dict[str, object]:
    argv = [*REMAPLAB, "bisect", str(REPRO / repro), "--repo", str(repo), "--good", commits[0]]
    argv += ["--bad", commits[-1], "--out", str(tmp / "log"), "--json", *extra]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=5400, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    data: dict[str, object] = json.loads(res.stdout)
    # the figures the README quotes: each step's kernel build time
    builds = [(s["role"], s["build_seconds"]) for s in data["steps"]]  # type: ignore[attr-defined]
    print(f"{repro}: kernel builds per step (s): {builds}; total {data['seconds']} s")
    return data


def test_kernel_bisect_names_the_commit_that_injected_the_warn(
    tmp_path: Path, kernel_repo: tuple[Path, list[str]]
) -> None:
    repo, commits = kernel_repo
    before = _git(repo, "rev-parse", "HEAD"), _git(repo, "status", "--porcelain")
    data = _kernel_bisect(tmp_path, repo, commits, "prctl-warn.c")
    assert data["culprit"] == commits[2]
    assert data["subject"] == "prctl: add the remaplab test options"
    assert "WARNING" in str(data["signature"])
    steps = data["steps"]
    assert isinstance(steps, list) and len(steps) <= 5  # bad, good, at most 3 bisect steps
    assert (_git(repo, "rev-parse", "HEAD"), _git(repo, "status", "--porcelain")) == before


def test_flaky_kernel_bug_is_found_with_runs(
    tmp_path: Path, kernel_repo: tuple[Path, list[str]]
) -> None:
    """The WARN fires in one call of two; 12 runs per commit miss it with p = 1/4096 (8 runs,
    p = 1/256, missed it once in a clean-clone CI run: 0/8 at the culprit)."""
    repo, commits = kernel_repo
    data = _kernel_bisect(tmp_path, repo, commits, "prctl-flaky.c", "--runs", "12")
    assert data["culprit"] == commits[2]


ANSWER_SOURCE = """// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
/* revision: {rev} */
static int answer = {answer};
module_param(answer, int, 0444);

static int __init bisectmod_init(void)
{{
	return 0;
}}

static void __exit bisectmod_exit(void)
{{
}}

module_init(bisectmod_init);
module_exit(bisectmod_exit);
MODULE_LICENSE("GPL");
"""
ANSWER_REPRO = r"""#include <stdio.h>

int main(void)
{
	FILE *f = fopen("/sys/module/bisectmod/parameters/answer", "r");
	int answer = 0;

	if (!f || fscanf(f, "%d", &answer) != 1) {
		perror("answer");
		return 2;
	}
	printf("answer %d\n", answer);
	return answer == 42 ? 0 : 1;
}
"""


def test_a_c_reproducer_bisects_a_module_repository(tmp_path: Path) -> None:
    """A driver's own C program (its exit status is the verdict) over a repository whose top
    level is the module: the lab builds and loads the module at each commit, runs the program,
    and names the commit whose module gives the wrong answer; the scenario it made is kept."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "Kbuild").write_text("obj-m += bisectmod.o\n")
    commits = []
    for rev in range(1, 6):
        answer = 41 if rev >= 3 else 42
        (repo / "bisectmod.c").write_text(ANSWER_SOURCE.format(rev=rev, answer=answer))
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-m", "bisectmod: off by one" if rev == 3 else f"rev {rev}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    repro = tmp_path / "answer.c"
    repro.write_text(ANSWER_REPRO)
    argv = [*REMAPLAB, "bisect", str(repro), "--repo", str(repo), "--good", commits[0]]
    argv += ["--bad", "main", "--out", str(tmp_path / "log"), "--json"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert data["culprit"] == commits[2], data
    assert "status 1" in data["signature"], data["signature"]
    assert (tmp_path / "log/bisect-c-wrapper.yaml").is_file()
