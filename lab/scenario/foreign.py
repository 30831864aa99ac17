"""Witnesses for a mapping the lab did not make (a user's driver mapped by the lab's holder, or a
user's program that handed its mapping over with remaplab_hold): no module PFN list to trust.

The kernel's page-table walk of the holder's range (multimap's WALK_PID: it sees VM_PFNMAP/VM_IO
mappings) and the physical witness (each page's token found in guest RAM from the host) are
compared page by page.  Contiguity, runs and distinct pages are judged on the PFNs both agree on;
pages that repeat, and pages where the two disagree, fail with a per-page table naming them.
pagemap, where asked for, must show holes or the walk's PFNs.  Pure: unit-tested on recorded
walks, pagemap dumps and token hits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from lab.scenario.oracles import Disagreement, contiguity, hits_text, run_lines
from lab.scenario.schema import CheckStep


@dataclass(frozen=True)
class Witnesses:
    """What was seen of one mapping, a list entry per page (None: not mapped / not found)."""

    walk: list[int | None] | None  # None: no kernel walk (multimap not loaded): walk_error says
    physical: list[int | None] | None  # None: tokens could not be written (read-only)
    hole: int | None = None  # the page munmap-part took away
    walk_error: str | None = None
    beyond_ram: frozenset[int] = frozenset()  # pages whose walk PFN is device memory, not RAM
    kpageflags: list[int | None] | None = None  # /proc/kpageflags of each walked PFN
    hits: list[list[int]] | None = None  # every PFN holding each page's token (copies too)


# Pages a driver never owns, by their /proc/kpageflags bits (include/uapi/linux/
# kernel-page-flags.h): mapping one into user space hands out memory the kernel will reuse or
# uses itself.  No allocated page reads so (fs/proc/page.c: BUDDY is PageBuddy or a free
# buddy page, PGTABLE a page type).  remap_pfn_range() checks none of this.
NOT_THE_DRIVERS = {
    10: "a free page (BUDDY: in the page allocator)",
    26: "a page table (PGTABLE)",
}
# Said, not failed: kmalloc memory mapped with remap_pfn_range() works (vm_insert_page() would
# refuse it: mm/memory.c validate_page_before_insert), and the page's other objects go with it.
KPF_SLAB = 7


def _fmt(pfn: int | None) -> str:
    return "-" if pfn is None else f"{pfn:#x}"


def agreed_pfns(w: Witnesses) -> tuple[list[int | None], list[str]]:
    """Per page the PFN the witnesses agree on (None where they do not, or where neither saw
    it), and the per-page table of disagreements."""
    n = len(w.walk if w.walk is not None else w.physical or [])
    walk = w.walk if w.walk is not None else [None] * n
    phys = w.physical if w.physical is not None else [None] * n
    agreed: list[int | None] = []
    rows: list[str] = []
    for i in range(n):
        if i == w.hole:
            agreed.append(None)
            if walk[i] is not None:
                rows.append(f"  {i:4d}  {_fmt(walk[i]):>14}  (unmapped by munmap-part)")
            continue
        k, p = walk[i], phys[i]
        if i in w.beyond_ram:  # the physical witness sees RAM only: the walk alone speaks
            agreed.append(k)
        elif w.walk is None or w.physical is None:
            agreed.append(k if w.walk is not None else p)
        elif k == p:  # the same PFN, or both say the page is not there (not a disagreement)
            agreed.append(k)
        else:
            agreed.append(None)
            seen = hits_text(w.hits[i]) if w.hits is not None else _fmt(p)
            rows.append(f"  {i:4d}  {_fmt(k):>14}  {seen}")
    if rows:
        rows.insert(0, f"  page  {'kernel walk':>14}  guest RAM (the page's token)")
    return agreed, rows


def unmapped_pages(w: Witnesses) -> list[int]:
    """Pages no witness sees (no page-table entry, no token in guest RAM), but munmap-part's."""
    if w.walk is None:
        return []
    phys = w.physical if w.physical is not None else [None] * len(w.walk)
    return [
        i
        for i, (k, p) in enumerate(zip(w.walk, phys, strict=False))
        if k is None and p is None and i != w.hole
    ]


def flagged_pages(w: Witnesses, bits: dict[int, str]) -> list[str]:
    """Walked pages whose kpageflags (read while the walk still found them: pagemap-dump) hold
    one of bits, as "page i (pfn, flags): what"."""
    out = []
    for i, (pfn, flags) in enumerate(zip(w.walk or [], w.kpageflags or [], strict=False)):
        if pfn is None or flags is None or i == w.hole:
            continue
        what = [text for bit, text in bits.items() if flags >> bit & 1]
        if what:
            out.append(f"  page {i} (pfn {pfn:#x}, kpageflags {flags:#x}): {', '.join(what)}")
    return out


def repeated_pages(pfns: list[int | None]) -> list[str]:
    """The pages that map a PFN another page maps too, as "pfn: pages i, j"."""
    where: dict[int, list[int]] = {}
    for i, pfn in enumerate(pfns):
        if pfn is not None:
            where.setdefault(pfn, []).append(i)
    return [
        f"  pfn {pfn:#x}: pages {', '.join(map(str, pages))}"
        for pfn, pages in where.items()
        if len(pages) > 1
    ]


def _repeat_summary(pfns: list[int | None]) -> str:
    """'expected each page once; 16 pages map 1 page between them (one page 16 times)'."""
    counts = Counter(p for p in pfns if p is not None)
    twice = {pfn: n for pfn, n in counts.items() if n > 1}
    pages, most = sum(twice.values()), max(twice.values())
    return (
        f"expected each page once; pages repeat: {pages} pages map {len(twice)} page(s) "
        f"between them (one page {most} times)"
    )


def _shape_checks(expect: CheckStep, pfns: list[int], seen: str) -> list[Disagreement]:
    shape = contiguity(pfns)
    problems = []
    want = expect.physically_contiguous
    if want is not None and shape.contiguous != want:
        runs = run_lines(shape)
        problems.append(
            Disagreement(
                seen,
                f"expected {'' if want else 'not '}physically contiguous, got {shape.summary()}",
                runs,
            )
        )
    if expect.distinct_pages is not None and shape.distinct != expect.distinct_pages:
        problems.append(
            Disagreement(
                seen, f"expected {expect.distinct_pages} distinct pages, got {shape.summary()}"
            )
        )
    if expect.runs is not None and len(shape.runs) != expect.runs:
        problems.append(Disagreement(seen, f"expected {expect.runs} runs, got {len(shape.runs)}"))
    return problems


def _pagemap_checks(
    expect: CheckStep, dump: dict[str, Any], walk: list[int | None] | None, hole: int | None
) -> list[Disagreement]:
    pages = [p for i, p in enumerate(dump["pages"]) if i != hole]  # munmap-part's hole: none
    if walk is not None and hole is not None:
        walk = [k for i, k in enumerate(walk) if i != hole]
    present = [bool(p["present"]) for p in pages]
    if expect.pagemap == "hole" and any(present):
        return [Disagreement("pagemap", f"expected holes (VM_PFNMAP), {sum(present)} present")]
    if expect.pagemap == "visible":
        if not all(present):
            return [
                Disagreement("pagemap", f"expected present pages, {present.count(False)} holes")
            ]
        pm = [p.get("pfn") for p in pages]
        if walk is not None and pm != walk:
            rows = [
                f"  {i:4d}  {_fmt(k):>14}  {_fmt(p):>14}"
                for i, (k, p) in enumerate(zip(walk, pm, strict=False))
                if k != p
            ]
            return [
                Disagreement(
                    "pagemap",
                    "pagemap PFNs disagree with the kernel walk",
                    [f"  page  {'kernel walk':>14}  {'pagemap':>14}", *rows],
                )
            ]
    return []


def check_foreign(
    expect: CheckStep, w: Witnesses, dump: dict[str, Any] | None
) -> tuple[list[Disagreement], dict[str, Any]]:
    """Every witness of a foreign mapping against the expectation and against each other."""
    agreed, rows = agreed_pfns(w)
    evidence: dict[str, Any] = {
        "walk_pfns": w.walk,
        "physical_pfns": w.physical,
        "agreed_pfns": agreed,
        "hole": w.hole,
    }
    if w.walk_error:
        evidence["walk_error"] = w.walk_error
    problems: list[Disagreement] = []
    if w.walk is None and (expect.physical or w.physical is None):
        problems.append(Disagreement("kernel walk", f"unavailable: {w.walk_error}"))
    if rows:
        problems.append(
            Disagreement(
                "physical",
                "the kernel walk and the tokens in guest RAM disagree (-: not mapped)",
                rows,
            )
        )
    absent = unmapped_pages(w)
    if absent:
        problems.append(
            Disagreement(
                "kernel walk",
                f"expected every page mapped; pages {absent} are not (no page-table entry"
                + (", no token in guest RAM)" if w.physical is not None else ")"),
            )
        )
    evidence["walk_kpageflags"] = w.kpageflags if w.kpageflags is not None else "unavailable"
    slab = flagged_pages(w, {KPF_SLAB: "slab memory (kmalloc or kmem_cache)"})
    if slab:
        evidence["slab_pages"] = [line.strip() for line in slab]
    foreign = flagged_pages(w, NOT_THE_DRIVERS)
    if foreign:
        problems.append(
            Disagreement(
                "kernel walk",
                f"expected pages the mapping owns; {len(foreign)} page(s) map memory the kernel "
                "owns (/proc/kpageflags)",
                foreign,
            )
        )
    seen_pfns = w.walk if w.walk is not None else agreed
    repeats = repeated_pages(seen_pfns)
    if repeats and expect.distinct_pages is None:
        problems.append(Disagreement("kernel walk", _repeat_summary(seen_pfns), repeats))
    known = [p for p in agreed if p is not None]
    evidence["contiguity"] = contiguity(known).summary()
    judged = "agreed PFNs" if w.walk is not None and w.physical is not None else "PFNs"
    problems += _shape_checks(expect, known, judged)
    if dump is not None:
        evidence["pagemap_present"] = sum(bool(p["present"]) for p in dump["pages"])
        evidence["vmflags"] = (dump.get("vma") or {}).get("vmflags")
        problems += _pagemap_checks(expect, dump, w.walk, w.hole)
    return problems, evidence
