"""The multimap backing x mapping matrix and what the module must do with each combination."""

from __future__ import annotations

from typing import Literal, get_args

# The one list of each (module/uapi/multimap.h's enums, lower-cased; a unit test checks them):
# the scenario schema, the guest tool arguments and the combination matrix all use these.
Backing = Literal["pages", "contig", "vmalloc"]
Mapping = Literal["remap", "remap_runs", "insert", "fault", "vmalloc_range", "insert_one"]
Source = Literal["pages", "buddy", "cma", "vmalloc"]
BACKINGS: tuple[str, ...] = get_args(Backing)
MAPPINGS: tuple[str, ...] = get_args(Mapping)
SOURCES: tuple[str, ...] = get_args(Source)
# remap_pfn_range makes VM_PFNMAP VMAs, which /proc/PID/pagemap reports as holes.
PFNMAP_MAPPINGS = frozenset({"remap", "remap_runs"})
# These need a refcount on every page (vm_insert_page, a fault handler returning the page).
REFCOUNTED_MAPPINGS = frozenset({"insert", "fault", "insert_one"})


def contig_source(kernel_has_cma: bool) -> str:
    return "cma" if kernel_has_cma else "buddy"


def refusal(backing: str, mapping: str, kernel_has_cma: bool) -> str | None:
    """Why the module refuses this combination at configure time (EINVAL), or None."""
    if mapping == "vmalloc_range" and backing != "vmalloc":
        return "remap_vmalloc_range maps only vmalloc memory"
    if backing == "contig" and mapping in REFCOUNTED_MAPPINGS and kernel_has_cma:
        return "a CMA block is mapped only VM_PFNMAP, as dma_mmap_pages() does (pins, migration)"
    if backing == "contig" and mapping in REFCOUNTED_MAPPINGS:
        return "a buddy-allocated DMA block has no per-page refcount for vm_insert_page/fault"
    return None


def combinations() -> list[tuple[str, str]]:
    return [(b, m) for b in BACKINGS for m in MAPPINGS]


def visible_to_pagemap(mapping: str) -> bool:
    return mapping not in PFNMAP_MAPPINGS
