from lab.combos import combinations, contig_source, refusal, visible_to_pagemap


def test_matrix_is_complete() -> None:
    assert len(combinations()) == 18


def test_refusals() -> None:
    assert refusal("pages", "vmalloc_range", True)
    assert refusal("contig", "vmalloc_range", True)
    assert refusal("vmalloc", "vmalloc_range", False) is None
    for mapping in ("insert", "fault", "insert_one"):
        assert refusal("contig", mapping, kernel_has_cma=False)
        assert refusal("contig", mapping, kernel_has_cma=True)  # CMA: VM_PFNMAP only
    valid_without_cma = [c for c in combinations() if not refusal(*c, kernel_has_cma=False)]
    assert len(valid_without_cma) == 13
    assert len([c for c in combinations() if not refusal(*c, kernel_has_cma=True)]) == 13


def test_pagemap_visibility_and_sources() -> None:
    assert not visible_to_pagemap("remap") and not visible_to_pagemap("remap_runs")
    assert visible_to_pagemap("insert") and visible_to_pagemap("vmalloc_range")
    assert contig_source(True) == "cma" and contig_source(False) == "buddy"


def _uapi_enum(name: str, prefix: str) -> dict[str, int]:
    """enum NAME's members, prefix stripped and lower-cased, from the module's UAPI header."""
    import re

    from lab.paths import REPO

    header = (REPO / "module" / "uapi" / "multimap.h").read_text()
    body = re.search(rf"enum {name} \{{(.*?)\}};", header, re.S)
    assert body, f"enum {name} not in multimap.h"
    return {
        m.group(1).lower(): int(m.group(2))
        for m in re.finditer(rf"\b{prefix}(\w+)\s*=\s*(\d+)", body.group(1))
    }


def test_vocabularies_match_the_uapi_header() -> None:
    from lab.combos import BACKINGS, MAPPINGS, SOURCES

    assert set(BACKINGS) == set(_uapi_enum("multimap_backing", "MULTIMAP_BACKING_"))
    assert set(MAPPINGS) == set(_uapi_enum("multimap_mapping", "MULTIMAP_MAP_"))
    assert set(SOURCES) == set(_uapi_enum("multimap_source", "MULTIMAP_SOURCE_"))
