"""The witnesses of a mapping the lab did not make, judged on recorded walks and token hits
(the walks below are from exmap on the x86_64 Debian kernel, examples/driver)."""

from __future__ import annotations

from lab.scenario.foreign import Witnesses, agreed_pfns, check_foreign, repeated_pages
from lab.scenario.oracles import physical_pfns, token
from lab.scenario.schema import CheckStep

EXMAP = [261637, 21249, 24442, 27329, 27333, 27334, 27335, 27336, 27337, 27338, 27339, 27340]
REPEATED = [0x3FEBB] * 4  # exmap bug=1: page 0 at every index


def test_agreeing_witnesses_judge_the_shape() -> None:
    w = Witnesses(list(EXMAP), list(EXMAP))
    problems, ev = check_foreign(CheckStep(distinct_pages=12, physically_contiguous=False), w, None)
    assert problems == []
    assert ev["agreed_pfns"] == EXMAP and ev["contiguity"].startswith("12 pages, 12 distinct")
    problems, _ = check_foreign(CheckStep(physically_contiguous=True), w, None)
    assert [p.witness for p in problems] == ["agreed PFNs"]


def test_a_repeated_page_is_named_with_every_index() -> None:
    # Only the last index's token survives in the shared page.
    w = Witnesses(list(REPEATED), [None, None, None, 0x3FEBB])
    problems, _ = check_foreign(CheckStep(), w, None)
    text = "\n".join(p.render() for p in problems)
    assert "pages repeat" in text and "pfn 0x3febb: pages 0, 1, 2, 3" in text
    assert "     0         0x3febb  -" in text  # the per-page diff


def test_expected_repeats_are_counted_not_refused() -> None:
    w = Witnesses(list(REPEATED), list(REPEATED))
    problems, _ = check_foreign(CheckStep(distinct_pages=1), w, None)
    assert problems == []


def test_disagreement_is_a_per_page_diff() -> None:
    phys: list[int | None] = list(EXMAP)
    phys[3] = 999
    agreed, rows = agreed_pfns(Witnesses(list(EXMAP), phys))
    assert agreed[3] is None and agreed[4] == EXMAP[4]
    assert rows[0].split() == ["page", "kernel", "walk", "guest", "RAM", "(the", "page's", "token)"]
    assert rows[1].split() == ["3", hex(EXMAP[3]), hex(999)]


def test_munmap_part_hole_is_expected() -> None:
    walk: list[int | None] = list(EXMAP)
    walk[6] = None
    phys = list(walk)
    problems, ev = check_foreign(CheckStep(), Witnesses(walk, phys, hole=6), None)
    assert problems == [] and ev["agreed_pfns"][6] is None


def test_device_memory_beyond_ram_is_the_walks_word() -> None:
    walk: list[int | None] = [0xFE000, 0xFE001]
    w = Witnesses(walk, [None, None], beyond_ram=frozenset({0, 1}))
    problems, ev = check_foreign(CheckStep(physically_contiguous=True), w, None)
    assert problems == [] and ev["agreed_pfns"] == walk


def test_no_kernel_walk_falls_back_to_guest_ram_and_says_so() -> None:
    w = Witnesses(None, list(EXMAP), walk_error="ENOENT")
    problems, ev = check_foreign(CheckStep(distinct_pages=12), w, None)
    assert problems == [] and ev["walk_error"] == "ENOENT"
    problems, _ = check_foreign(
        CheckStep(physical=True), Witnesses(None, None, None, "ENOENT"), None
    )
    assert "unavailable: ENOENT" in problems[0].render()


def test_pagemap_holes_and_visible_pages() -> None:
    holes = {"pages": [{"present": False, "pfn": None}] * 2, "vma": {"vmflags": "pf io"}}
    w = Witnesses([5, 9], [5, 9])
    assert check_foreign(CheckStep(pagemap="hole"), w, holes)[0] == []
    problems, _ = check_foreign(CheckStep(pagemap="visible"), w, holes)
    assert "expected present pages, 2 holes" in problems[0].render()
    shown = {"pages": [{"present": True, "pfn": 5}, {"present": True, "pfn": 7}]}
    problems, _ = check_foreign(CheckStep(pagemap="visible"), w, shown)
    assert "pagemap PFNs disagree with the kernel walk" in problems[0].render()


def test_repeated_pages_lists_only_repeats() -> None:
    assert repeated_pages([1, 2, 3, None, None]) == []
    assert repeated_pages([1, 2, 1]) == ["  pfn 0x1: pages 0, 2"]


def test_pagemap_visible_ignores_the_munmap_part_hole() -> None:
    dump = {
        "pages": [
            {"present": True, "pfn": 5},
            {"present": False, "pfn": None},
            {"present": True, "pfn": 9},
        ]
    }
    w = Witnesses([5, None, 9], [5, None, 9], hole=1)
    assert check_foreign(CheckStep(pagemap="visible"), w, dump)[0] == []


def test_pages_no_witness_sees_are_unmapped_not_a_disagreement() -> None:
    """A driver whose fault handler maps only part of the range (a user's vm_ops->fault driver,
    pages 8-15 past its buffer): the walk and guest RAM agree the pages are not there."""
    from lab.scenario.oracles import headline

    walk: list[int | None] = [*EXMAP[:8], *[None] * 8]
    _agreed, rows = agreed_pfns(Witnesses(walk, list(walk)))
    assert rows == []
    problems, _ = check_foreign(CheckStep(), Witnesses(walk, list(walk)), None)
    assert [p.render() for p in problems] == [
        "kernel walk: expected every page mapped; pages [8, 9, 10, 11, 12, 13, 14, 15] are not "
        "(no page-table entry, no token in guest RAM)"
    ]
    assert headline(problems) == "the mapping is not what the step expects:\n"


# Recorded on x86_64 (Debian 6.1): a dma_mmap_coherent() driver whose dma handle was one page
# off mapped its 15 buffer pages (kpageflags 0) and, past them, a page table (bit 26).
DMA_WALK = list(range(27793, 27809))
DMA_FLAGS = [0] * 15 + [0x4000000]


def test_a_page_the_kernel_owns_is_named_even_when_the_witnesses_agree() -> None:
    """Every witness agrees and the shape is right, yet page 15 is a page table: the driver
    hands kernel memory to user space."""
    w = Witnesses(list(DMA_WALK), list(DMA_WALK), kpageflags=list(DMA_FLAGS))
    problems, ev = check_foreign(CheckStep(distinct_pages=16, runs=1), w, None)
    text = "\n".join(p.render() for p in problems)
    assert "1 page(s) map memory the kernel owns" in text
    assert "page 15 (pfn 0x6ca0, kpageflags 0x4000000): a page table (PGTABLE)" in text
    assert ev["walk_kpageflags"] == DMA_FLAGS
    good = Witnesses(DMA_WALK, DMA_WALK, kpageflags=[0] * 16)
    assert check_foreign(CheckStep(distinct_pages=16), good, None)[0] == []


def test_a_free_page_fails_slab_memory_is_said_and_other_flags_are_nothing() -> None:
    """A free page fails; kmalloc memory mapped with remap_pfn_range() works and is only said;
    LRU/anonymous/compound-tail flags, an unknown page (null: it moved between the walk and the
    read) and a page the walk did not find are nothing."""
    walk = [0x100, 0x101, 0x102, 0x103, 0x104, None]
    flags = [0x400, 0x80 | 0x8000, 0x20 | 0x800 | 0x1000, 0x10000, None, None]
    problems, ev = check_foreign(CheckStep(), Witnesses(walk, None, kpageflags=flags), None)
    rows = [r for p in problems for r in p.diff if "kpageflags" in r]
    assert rows == [
        "  page 0 (pfn 0x100, kpageflags 0x400): a free page (BUDDY: in the page allocator)"
    ]
    assert ev["slab_pages"] == [
        "page 1 (pfn 0x101, kpageflags 0x8080): slab memory (kmalloc or kmem_cache)"
    ]


def test_no_kpageflags_is_said_in_the_evidence() -> None:
    _problems, ev = check_foreign(CheckStep(), Witnesses(DMA_WALK, DMA_WALK), None)
    assert ev["walk_kpageflags"] == "unavailable"


def test_a_cut_output_says_so() -> None:
    from lab.scenario.context import tail

    assert tail("short") == "short"
    kept = tail("x" * 2500 + "END")
    assert kept.startswith("[503 characters before these are not kept]\n") and kept.endswith("END")


def test_a_repeat_says_how_often() -> None:
    """One page behind all sixteen (an mmap that forgot '+ i') is not 'mapped twice'."""
    w = Witnesses([0x6A0C] * 16, [0x6A0C] * 16)
    problems, _ = check_foreign(CheckStep(), w, None)
    text = "\n".join(p.render() for p in problems)
    assert "16 pages map 1 page(s) between them (one page 16 times)" in text, text


def test_a_token_copied_by_another_reader_is_still_the_walks_page() -> None:
    """A correct driver whose buffer another process read (`cat /dev/dev > /dev/null`): every
    token sits in guest RAM twice, at the mapped page and in the reader's memory.  The page
    where the walk says is the mapping's (a helper's correct driver failed here, 16 of 16)."""
    seed, first, n = 7, 0, 4
    found = {token(seed, first + i): [0x9000 + i, 0x5000 + i] for i in range(n)}
    walk: list[int | None] = [0x9000 + i for i in range(n)]
    phys = physical_pfns(found, seed, first, n, walk)
    assert phys == walk
    hits = [found[token(seed, first + i)] for i in range(n)]
    problems, _ = check_foreign(CheckStep(), Witnesses(walk, phys, hits=hits), None)
    assert problems == []


def test_a_copy_elsewhere_and_none_at_the_walks_pfn_disagrees_with_the_hits_named() -> None:
    seed = 7
    found = {token(seed, 0): [0x5000, 0x6000], token(seed, 1): []}
    walk: list[int | None] = [0x9000, 0x9001]
    phys = physical_pfns(found, seed, 0, 2, walk)
    assert phys == [None, None]
    hits = [found[token(seed, 0)], found[token(seed, 1)]]
    _agreed, rows = agreed_pfns(Witnesses(walk, phys, hits=hits))
    assert rows[1].split() == ["0", "0x9000", "found", "2x:", "0x5000,", "0x6000"]
    assert rows[2].split() == ["1", "0x9001", "not", "found"]


def test_without_another_witness_two_hits_stay_unresolved() -> None:
    seed = 7
    found = {token(seed, 0): [0x5000, 0x6000]}
    assert physical_pfns(found, seed, 0, 1) == [None]
