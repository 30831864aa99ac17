"""The bisection loop: the bad commit first (its failure is the signature every step is
compared with), then the good one (it must not show that failure), then `git bisect` in the
worktree until it names the first bad commit.  Every step is printed as it goes and kept in
the log folder: steps.json, bisect.log (git bisect log), each commit's test logs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.bisect import git
from lab.bisect.decide import BAD, GOOD, SKIP, Verdict, first_signature, judge
from lab.bisect.probe import Test, observe
from lab.errors import LabError
from lab.log import Log, stderr_log


@dataclass
class Bisection:
    signature: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    culprit: str | None = None
    subject: str = ""
    candidates: tuple[str, ...] = ()
    seconds: float = 0.0

    def as_dict(self, log_dir: str) -> dict[str, Any]:
        return {
            "culprit": self.culprit,
            "subject": self.subject,
            "candidates": list(self.candidates),
            "signature": self.signature,
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "log": log_dir,
        }


Show = Callable[[str], None]


def _step(
    test: Test, wt: git.Worktree, result: Bisection, role: str, show: Show, log: Log
) -> Verdict:
    commit = wt.head()
    started = time.monotonic()
    seen, build_s = observe(test, wt.path, commit, result.signature or None, log)
    if not result.signature:
        result.signature = first_signature(seen.runs) or ""
    verdict = judge(result.signature, seen) if result.signature else Verdict(GOOD, "no failure")
    entry = {
        "commit": commit,
        "subject": git.subject(wt.path, commit),
        "role": role,
        "verdict": verdict.word,
        "reason": verdict.reason,
        "runs": list(seen.runs),
        "build_seconds": None if build_s is None else round(build_s, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    result.steps.append(entry)
    built = f", kernel build {build_s:.0f} s" if build_s is not None else ""
    show(
        f"{role} {commit[:12]} {verdict.word}: {verdict.reason} "
        f"({entry['seconds']:.0f} s{built}) -- {entry['subject']}"
    )
    (test.out / "steps.json").write_text(json.dumps(result.steps, indent=1) + "\n")
    return verdict


def bisect(test: Test, good: str, bad: str, show: Show, log: Log = stderr_log) -> Bisection:
    start = time.monotonic()
    result = Bisection()
    good_sha, bad_sha = git.resolve(test.repo, good), git.resolve(test.repo, bad)
    try:
        git.git(test.repo, "merge-base", "--is-ancestor", good_sha, bad_sha)
    except LabError:
        raise LabError(f"--good {good} is not an ancestor of --bad {bad}") from None
    with git.Worktree(test.repo, bad_sha) as wt:
        _step(test, wt, result, "bad commit", show, log)
        if not result.signature:
            raise LabError(
                f"{bad} does not show a failure in {test.runs} run(s): nothing to bisect"
            )
        git.git(wt.path, "checkout", "--quiet", "--detach", good_sha)
        verdict = _step(test, wt, result, "good commit", show, log)
        if verdict.word == BAD:
            raise LabError(f"{good} shows the failure too ({result.signature}): not a good commit")
        out = git.git(wt.path, "bisect", "start", bad_sha, good_sha)
        n = 0
        while not (done := git.parse(out)).finished:
            n += 1
            verdict = _step(test, wt, result, f"step {n}", show, log)
            word = verdict.word if verdict.word in (GOOD, BAD, SKIP) else SKIP
            out = git.git(wt.path, "bisect", word)
        (test.out / "bisect.log").write_text(git.git(wt.path, "bisect", "log", check=False))
        result.culprit, result.candidates = done.culprit, done.candidates
        if done.culprit:
            result.subject = git.subject(test.repo, done.culprit)
    result.seconds = time.monotonic() - start
    return result
