"""Contiguity analysis and witness comparison on recorded data."""

from pathlib import Path

from lab.physmem import offset_to_gpa
from lab.profiles import get_profile
from lab.scenario.oracles import (
    check_mapping,
    contiguity,
    physical_pfns,
    run_lines,
    search_tokens,
    taint_flags,
    token,
)
from lab.scenario.schema import CheckStep

# Recorded from a Debian 6.1 x86_64 guest: multimap-ctl --backing pages --pages 8
PAGES_PFNS = [261651, 261704, 261705, 24980, 261634, 24982, 261672, 261624]
CONTIG_PFNS = [24620, 24621, 24622, 24623]


def test_contiguity_of_scattered_pages() -> None:
    c = contiguity(PAGES_PFNS)
    assert not c.contiguous
    assert c.distinct == 8 and c.duplicates == [] and c.zero_pfns == 0
    assert c.runs[1] == (261704, 2)  # two neighbours happened to be adjacent
    assert len(c.runs) == 7 and len(c.gaps) == 6


def test_contiguity_of_a_block_and_edge_cases() -> None:
    assert contiguity(CONTIG_PFNS).contiguous
    assert not contiguity([]).contiguous
    dup = contiguity([5, 6, 5])
    assert dup.duplicates == [5] and dup.distinct == 2
    assert not contiguity([0, 1, 2]).contiguous  # zero PFN: pagemap without CAP_SYS_ADMIN


def test_token_matches_guest_tool() -> None:
    # multimap-ctl: (seed << 32) ^ (0x6d6d0000 << 32) ^ (index + 1)
    assert token(0x5EED, 0) == ((0x5EED << 32) ^ (0x6D6D0000 << 32) ^ 1)
    assert token(1, 41) & 0xFFFFFFFF == 42


def test_physical_pfns_need_exactly_one_hit() -> None:
    found = {token(7, 0): [100], token(7, 1): [101, 555], token(7, 3): [103]}
    assert physical_pfns(found, 7, 0, 4) == [100, None, None, 103]


def test_search_tokens_names_odd_hits_and_resolves_copies() -> None:
    ram = {token(7, 2): [100], token(7, 3): [101, 555], token(7, 5): [103], token(8, 4): [9]}
    asked: list[set[int]] = []

    def find(tokens: set[int]) -> dict[int, list[int]]:
        asked.append(tokens)
        return {t: ram[t] for t in tokens if t in ram}

    # pages 2..5 of a mapping: page 3's token has a copy, page 4's is not there (seed 8's is)
    found = search_tokens(find, 7, 2, 4, expected=[100, 555, None, 103])
    assert asked == [{token(7, i) for i in range(2, 6)}]
    assert found.pfns == [100, 555, None, 103]
    assert found.hits == [[100], [101, 555], [], [103]]
    assert found.evidence["physical_hits"] == {"1": [101, 555], "2": []}
    assert found.evidence["physical_search_s"] >= 0
    clean = search_tokens(find, 7, 2, 1)
    assert clean.pfns == [100] and "physical_hits" not in clean.evidence


def test_witnesses_disagreeing_give_a_diff() -> None:
    report = {
        "pfns": CONTIG_PFNS,
        "walk": CONTIG_PFNS,
        "contents_match": True,
        "info": {"source": "buddy"},
    }
    expect = CheckStep(physically_contiguous=True, physical=True, pagemap="visible")
    dump = {"pages": [{"present": True, "pfn": p} for p in CONTIG_PFNS], "vma": {"vmflags": "rd"}}
    problems, _ = check_mapping(report, expect, dump, list(CONTIG_PFNS))
    assert problems == []
    moved = [*CONTIG_PFNS[:2], 999, CONTIG_PFNS[3]]
    problems, _ = check_mapping(report, expect, dump, moved)
    (p,) = problems
    assert p.witness == "physical"
    assert any("999" in line for line in p.diff)


def test_wrong_contiguity_expectation_is_reported() -> None:
    report = {"pfns": PAGES_PFNS, "walk": PAGES_PFNS, "contents_match": True, "info": {}}
    problems, _ = check_mapping(report, CheckStep(physically_contiguous=True), None, None)
    (p,) = problems
    assert "expected physically contiguous" in p.message and "7 run(s)" in p.message


def test_taint() -> None:
    assert taint_flags(4096, 4096 | 512) == ["W (warning)"]
    assert taint_flags(0, 4096 | 8192) == []


def test_guest_physical_layout() -> None:
    x86, arm = get_profile("x86_64"), get_profile("arm64")
    assert offset_to_gpa(x86, 1 << 30, 0x1000) == 0x1000
    assert offset_to_gpa(arm, 1 << 30, 0x1000) == 0x40001000
    big = 4 << 30  # q35 splits RAM at 2 GiB when there is 2.75 GiB or more
    assert offset_to_gpa(x86, big, 0x80000000) == 1 << 32
    _ = Path  # keep the import for type checkers


def test_the_headline_says_disagree_only_when_witnesses_contradict() -> None:
    """A walk and guest RAM that agree on a mapping the step did not expect is an unmet
    expectation, not a disagreement (a new user's check read "witnesses disagree")."""
    from lab.scenario.oracles import Disagreement, headline

    unmet = Disagreement("kernel walk", "expected 9 distinct pages, got 8 pages in 1 run")
    clash = Disagreement("physical", "tokens found in guest-physical memory are not at ...")
    assert headline([unmet]) == "the mapping is not what the step expects:\n"
    assert headline([clash]) == "witnesses disagree:\n"
    assert headline([clash, unmet]).startswith("witnesses disagree, and the mapping is not")


def test_run_lines_say_how_many_runs_they_leave_out() -> None:
    scattered = contiguity([100 + 2 * i for i in range(13)])
    lines = run_lines(scattered)
    assert len(lines) == 11 and lines[0] == "  run 0: pfn 0x64 x 1"
    assert lines[-1] == "  ... and 3 more run(s) (all: the evidence's pfns)"
    assert run_lines(contiguity([5, 6, 7])) == ["  run 0: pfn 0x5 x 3"]
