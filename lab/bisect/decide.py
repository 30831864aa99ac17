"""The decision at one bisect step (pure): good, bad or skip, and why.

As syz-bisect does: a commit that does not build or does not boot is skipped; a step is bad if
ANY of its runs shows the original failure (flaky bugs: more runs, more confidence).  A run that
fails differently (another crash title, another failing step) is not evidence of the original
bug; and it is not evidence of its absence either, since that other failure may have stopped the
test before the original one could show.  Such a commit is skipped (git bisect skip), never
called good, and the step says so; runs that passed outright alongside it make it good only if
no run failed differently."""

from __future__ import annotations

from dataclasses import dataclass

GOOD, BAD, SKIP = "good", "bad", "skip"


@dataclass(frozen=True)
class Observation:
    """What one commit's test gave: built/booted, then each run's failure signature (None for
    a run that passed)."""

    built: bool = True
    booted: bool = True
    runs: tuple[str | None, ...] = ()
    problem: str = ""  # the build or boot error, one line


@dataclass(frozen=True)
class Verdict:
    word: str  # good | bad | skip
    reason: str


def judge(original: str, seen: Observation) -> Verdict:
    if not seen.built:
        return Verdict(SKIP, f"does not build ({seen.problem})")
    if not seen.booted:
        return Verdict(SKIP, f"does not boot ({seen.problem})")
    if not seen.runs:
        return Verdict(SKIP, "no run completed")
    hits = sum(1 for s in seen.runs if s == original)
    if hits:
        return Verdict(BAD, f"{hits}/{len(seen.runs)} runs showed the original failure: {original}")
    other = sorted({s for s in seen.runs if s is not None})
    if other:
        return Verdict(
            SKIP,
            f"a different failure ({'; '.join(other)}), not the original ({original}): "
            "skipped, as it may hide the original",
        )
    return Verdict(GOOD, f"{len(seen.runs)}/{len(seen.runs)} runs passed")


def first_signature(runs: tuple[str | None, ...]) -> str | None:
    """The bad commit's signature: its most frequent failure (first seen on a tie)."""
    failures = [s for s in runs if s is not None]
    if not failures:
        return None
    return max(dict.fromkeys(failures), key=failures.count)
