"""Witnesses of what a mapping really is, each trusting something different:

- module: multimap's PFN list and its kernel page-table walk (trusts the guest kernel);
- pagemap: /proc/PID/pagemap + kpageflags (trusts the guest kernel's generic code);
- physical: tokens written through the user mapping, found in guest-physical memory read from
  the host (trusts nothing in the guest);
- health: new kernel log reports, taint, module stats, meminfo.
Pure analysis lives here too (contiguity), unit-tested on recorded data."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.scenario.schema import CheckStep

TOKEN_MAGIC = 0x6D6D0000 << 32
TAINT_BAD = {
    5: "B (bad page)",
    7: "D (died: oops or BUG)",
    9: "W (warning)",
    14: "L (soft lockup)",
}


@dataclass(frozen=True)
class Contiguity:
    pages: int
    distinct: int
    runs: list[tuple[int, int]]  # (first pfn, length)
    duplicates: list[int]
    zero_pfns: int
    gaps: list[tuple[int, int]]  # (index, pfn jump) where the next pfn is not pfn + 1

    @property
    def contiguous(self) -> bool:
        return self.pages > 0 and len(self.runs) == 1 and not self.zero_pfns

    def summary(self) -> str:
        return (
            f"{self.pages} pages, {self.distinct} distinct, {len(self.runs)} run(s), "
            f"{len(self.duplicates)} duplicate(s), {self.zero_pfns} zero PFN(s)"
        )


def contiguity(pfns: list[int]) -> Contiguity:
    runs: list[tuple[int, int]] = []
    gaps: list[tuple[int, int]] = []
    seen: set[int] = set()
    dups: list[int] = []
    for i, pfn in enumerate(pfns):
        if pfn in seen and pfn not in dups:
            dups.append(pfn)
        seen.add(pfn)
        if runs and pfn == runs[-1][0] + runs[-1][1]:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            if runs:
                gaps.append((i, pfn - (runs[-1][0] + runs[-1][1] - 1)))
            runs.append((pfn, 1))
    return Contiguity(
        pages=len(pfns),
        distinct=len(seen),
        runs=runs,
        duplicates=dups,
        zero_pfns=sum(1 for p in pfns if p == 0),
        gaps=gaps,
    )


def token(seed: int, index: int) -> int:
    """What multimap-ctl writes into the first 8 bytes of buffer page `index` (its complement
    goes into the last 8)."""
    return ((seed << 32) ^ TOKEN_MAGIC ^ (index + 1)) & ((1 << 64) - 1)


TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"  # the kernel's taint letters by bit (tainted-kernels.rst)


def taint_letters(value: str) -> str:
    """' (O, E)': the letters of a taint value, as the kernel prints them after 'Tainted:'."""
    try:
        bits = int(value)
    except ValueError:
        return ""
    letters = [c for n, c in enumerate(TAINT_LETTERS) if bits & (1 << n)]
    return f" ({', '.join(letters)})" if letters else ""


def taint_flags(before: int, after: int) -> list[str]:
    new = after & ~before
    return [name for bit, name in TAINT_BAD.items() if new & (1 << bit)]


@dataclass
class Disagreement:
    witness: str
    message: str
    diff: list[str] = field(default_factory=list)

    def render(self) -> str:
        return "\n".join([f"{self.witness}: {self.message}", *self.diff[:20]])

    @property
    def unmet(self) -> bool:
        """The step's expectation not met ("expected 9 distinct pages, got ..."), as opposed to
        two witnesses that disagree with each other."""
        return self.message.startswith("expected ")


def headline(problems: list[Disagreement]) -> str:
    """What a failed check says first: only when witnesses contradict each other do they
    'disagree'; the walk and guest RAM agreeing on a mapping the step did not expect is not that."""
    if all(p.unmet for p in problems):
        return "the mapping is not what the step expects:\n"
    if any(p.unmet for p in problems):
        return "witnesses disagree, and the mapping is not what the step expects:\n"
    return "witnesses disagree:\n"


def diff_pfns(name_a: str, a: list[int], name_b: str, b: list[int]) -> list[str]:
    out = [f"  page  {name_a:>14}  {name_b:>14}"]
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            out.append(f"  {i:4d}  {x:>14}  {y:>14}")
    if len(a) != len(b):
        out.append(f"  lengths differ: {len(a)} vs {len(b)}")
    return out


def physical_pfns(
    found: dict[int, list[int]],
    seed: int,
    first: int,
    n: int,
    expected: Sequence[int | None] | None = None,
) -> list[int | None]:
    """Per mapped page: the guest-physical PFN holding its token, or None.  A token found more
    than once is a copy's doing (another process read the buffer: its pipe or its own buffer
    holds the bytes too): where one of the hits is the PFN another witness names for the page
    (expected: the kernel walk, the module's list), the page is there; else it is unresolved."""
    out: list[int | None] = []
    for i in range(n):
        hits = found.get(token(seed, first + i), [])
        want = expected[i] if expected is not None and i < len(expected) else None
        if len(hits) == 1:
            out.append(hits[0])
        else:
            out.append(want if want is not None and want in hits else None)
    return out


RUNS_SHOWN = 10


def run_lines(shape: Contiguity, most: int = RUNS_SHOWN) -> list[str]:
    """A mapping's physically contiguous runs, a line each; past `most`, how many more."""
    lines = [f"  run {i}: pfn {p:#x} x {n}" for i, (p, n) in enumerate(shape.runs[:most])]
    if len(shape.runs) > most:
        lines.append(f"  ... and {len(shape.runs) - most} more run(s) (all: the evidence's pfns)")
    return lines


@dataclass(frozen=True)
class TokenSearch:
    """The physical witness of n mapped pages: per page the PFN holding its token (None when
    unresolved), every hit of every token, and the evidence a step records."""

    pfns: list[int | None]
    hits: list[list[int]]
    evidence: dict[str, Any]


def search_tokens(
    find: Callable[[set[int]], dict[int, list[int]]],
    seed: int,
    first: int,
    n: int,
    expected: Sequence[int | None] | None = None,
) -> TokenSearch:
    """Search guest RAM (find: GuestRAM.find_page_tokens) for the tokens of pages first..first+n
    written with seed; expected as for physical_pfns.  A token seen 0 or 2+ times (a copy:
    another reader) is named with its hits in the evidence's physical_hits."""
    start = time.monotonic()
    found = find({token(seed, first + i) for i in range(n)})
    hits = [found.get(token(seed, first + i), []) for i in range(n)]
    evidence: dict[str, Any] = {"physical_search_s": round(time.monotonic() - start, 4)}
    odd = {str(i): h for i, h in enumerate(hits) if len(h) != 1}
    if odd:
        evidence["physical_hits"] = odd
    return TokenSearch(physical_pfns(found, seed, first, n, expected), hits, evidence)


def hits_text(hits: list[int]) -> str:
    """A token's hits in guest RAM, for a table cell: 'not found', 'found 3x: 0x1, 0x2, 0x3'."""
    if not hits:
        return "not found"
    shown = ", ".join(f"{p:#x}" for p in hits[:4]) + (", ..." if len(hits) > 4 else "")
    return f"found {len(hits)}x: {shown}"


def _module_checks(
    report: dict[str, Any], expect: CheckStep, module_pfns: list[int], walk: list[int]
) -> list[Disagreement]:
    """The module's own witnesses: readback, its PFN list, its page-table walk."""
    problems: list[Disagreement] = []
    shape = contiguity(module_pfns)
    if expect.contents_match is not False and not report.get("contents_match"):
        problems.append(Disagreement("module", "data written through the mapping != readback"))
    if expect.pfns_match_module is not False and walk != module_pfns:
        problems.append(
            Disagreement(
                "module",
                "page-table walk disagrees with the module's PFN list",
                diff_pfns("module", module_pfns, "page tables", walk),
            )
        )
    contiguous = expect.physically_contiguous
    if contiguous is not None and shape.contiguous != contiguous:
        problems.append(
            Disagreement(
                "module",
                f"expected {'' if contiguous else 'not '}physically contiguous, "
                f"got {shape.summary()}",
                run_lines(shape),
            )
        )
    if expect.distinct_pages is not None and shape.distinct != expect.distinct_pages:
        problems.append(
            Disagreement(
                "module", f"expected {expect.distinct_pages} distinct pages, got {shape.summary()}"
            )
        )
    source = report.get("info", {}).get("source")
    if expect.source is not None and source != expect.source:
        problems.append(Disagreement("module", f"expected source {expect.source}, got {source}"))
    if expect.runs is not None and len(shape.runs) != expect.runs:
        problems.append(
            Disagreement("module", f"expected {expect.runs} runs, got {len(shape.runs)}")
        )
    return problems


def _pagemap_checks(
    dump: dict[str, Any], expect: CheckStep, module_pfns: list[int], evidence: dict[str, Any]
) -> list[Disagreement]:
    """/proc/PID/pagemap: holes for VM_PFNMAP, else present pages at the module's PFNs."""
    pages = dump["pages"]
    present = [p["present"] for p in pages]
    pm_pfns = [p.get("pfn") or 0 for p in pages]
    evidence["pagemap_present"] = sum(present)
    evidence["vmflags"] = (dump.get("vma") or {}).get("vmflags")
    if expect.pagemap == "hole" and any(present):
        return [Disagreement("pagemap", f"expected holes, {sum(present)} present")]
    if expect.pagemap == "visible":
        if not all(present):
            holes = present.count(False)
            return [Disagreement("pagemap", f"expected present pages, {holes} holes")]
        if pm_pfns != module_pfns:
            return [
                Disagreement(
                    "pagemap",
                    "pagemap PFNs disagree with the module's",
                    diff_pfns("module", module_pfns, "pagemap", pm_pfns),
                )
            ]
    return []


def _physical_checks(physical: list[int | None], module_pfns: list[int]) -> list[Disagreement]:
    if physical == module_pfns:
        return []
    shown = [p if p is not None else -1 for p in physical]
    return [
        Disagreement(
            "physical",
            "tokens found in guest-physical memory are not at the module's PFNs "
            "(-1: token not found exactly once)",
            diff_pfns("module", module_pfns, "guest RAM", shown),
        )
    ]


def check_mapping(
    report: dict[str, Any],
    expect: CheckStep,
    pagemap_dump: dict[str, Any] | None,
    physical: list[int | None] | None,
) -> tuple[list[Disagreement], dict[str, Any]]:
    """Compare every witness with the expectation and with each other."""
    module_pfns: list[int] = list(report.get("pfns", []))
    walk = [int(p) for p in report.get("walk", [])]
    shape = contiguity(module_pfns)
    evidence: dict[str, Any] = {
        "module_pfns": module_pfns,
        "walk_pfns": walk,
        "contiguity": shape.summary(),
        "runs": shape.runs[:64],
        "source": report.get("info", {}).get("source"),
    }
    problems = _module_checks(report, expect, module_pfns, walk)
    if pagemap_dump is not None:
        problems += _pagemap_checks(pagemap_dump, expect, module_pfns, evidence)
    if physical is not None:
        evidence["physical_pfns"] = physical
        problems += _physical_checks(physical, module_pfns)
    return problems, evidence
