"""What one run of a reproducer gave, and the summary over all runs (pure: no VM here)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

CRASH = "crash"
NO_CRASH = "no crash"
TIMED_OUT = "no crash (timed out)"
BOOT_FAILURE = "boot failure"
ERROR = "error"  # SSH lost while the guest lived, the binary could not be copied, ...
INTERRUPTED = "interrupted"
# syzkaller's title when the guest dies with no report on its console
LOST_TITLE = "lost connection to test machine"


@dataclass
class RunRecord:
    index: int  # 1-based
    vm: int  # which worker (VM slot) ran it, 1-based
    guest: str  # "fresh" (booted for this run) or "reused" (the previous run ended cleanly)
    outcome: str
    titles: list[str] = field(default_factory=list)
    status: int | None = None  # the reproducer's exit status when it finished
    seconds: float = 0.0
    detail: str = ""
    console: str = ""  # console text of this run (from its start); not in as_dict
    stdout: str = ""  # the reproducer's own output (its last OUTPUT_KEEP characters each)
    stderr: str = ""
    reports: list[Any] = field(default_factory=list)  # lab.crash.Report; not in as_dict
    next_guest: str = ""  # why the next run gets a fresh guest, if it does

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "vm": self.vm,
            "guest": self.guest,
            "next_guest": self.next_guest,
            "outcome": self.outcome,
            "titles": self.titles,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "detail": self.detail,
        }

    def line(self, total: int) -> str:
        what = self.outcome
        if self.titles:  # a title printed 16 times (one report per page) is said once, counted
            counted = {t: self.titles.count(t) for t in self.titles}
            what += ": " + "; ".join(t + (f" (x{n})" if n > 1 else "") for t, n in counted.items())
        elif self.status is not None:
            what += f" (exit status {self.status})"
        if self.detail:
            what += f" ({self.detail})"
        where = f"vm {self.vm}, {self.guest} guest, {self.seconds:.1f} s"
        after = f"; guest {self.next_guest}" if self.next_guest and self.outcome == NO_CRASH else ""
        return f"run {self.index}/{total} ({where}): {what}{after}"


def matching(titles: list[str], title: re.Pattern[str] | None) -> list[str]:
    """The titles that count (all, or those --title matches)."""
    return [t for t in titles if title is None or title.search(t)]


@dataclass(frozen=True)
class Summary:
    runs: int
    crashed: int  # runs with at least one matching crash
    titles: dict[str, int]  # every crash title seen -> number of runs it appeared in
    matched: dict[str, int]  # the same, matching --title only
    outcomes: dict[str, int]

    @property
    def reproduced(self) -> bool:
        return self.crashed > 0

    @property
    def title(self) -> str | None:
        """The most frequent matching title (first seen wins a tie)."""
        return max(self.matched, key=lambda t: self.matched[t]) if self.matched else None

    def lines(self) -> list[str]:
        if self.reproduced:
            head = f"reproduced {self.crashed}/{self.runs}: {self.title}"
        else:
            seen = ", ".join(f"{k} {v}" for k, v in self.outcomes.items())
            head = f"not reproduced 0/{self.runs} ({seen})"
        out = [head]
        for t, n in self.titles.items():
            mark = "" if t in self.matched else "  (does not match --title)"
            out.append(f"  {n}x {t}{mark}")
        return out


def summarize(records: list[RunRecord], title: re.Pattern[str] | None) -> Summary:
    titles: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    crashed = 0
    for r in sorted(records, key=lambda r: r.index):
        distinct = list(dict.fromkeys(r.titles))
        titles.update(distinct)
        hits = matching(distinct, title)
        matched.update(hits)
        crashed += bool(hits)
    outcomes = Counter(r.outcome for r in records)
    return Summary(len(records), crashed, dict(titles), dict(matched), dict(outcomes))
