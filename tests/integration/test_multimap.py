"""multimap in booted guests, both arches: every combination, every lifecycle, every refusal,
stats back to zero, a clean kernel log, and a seeded random run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from lab import combos
from lab.guest_tools import ctl, ctl_args, hold, module_stats, pagemap
from lab.vm import VM

KERNEL_TROUBLE = re.compile(
    r"WARNING:|BUG:|Oops|Kernel panic|general protection fault|Bad page (state|map)|"
    r"bad rss-counter|list_(add|del) corruption|refcount_t:|Unable to handle"
)
LIVE = ("buffers", "pages", "vmas", "files")


def has_cma(vm: VM) -> bool:
    return vm.kernel.config_value("CONFIG_DMA_CMA") == "y"


@pytest.fixture(scope="module")
def mm(vm: VM) -> Iterator[VM]:
    res = vm.run("modprobe multimap && dmesg | wc -l")
    assert res.ok, res.stderr
    vm.dmesg_start = int(res.stdout)  # type: ignore[attr-defined]
    yield vm
    stats = module_stats(vm)
    assert {k: stats[k] for k in LIVE} == dict.fromkeys(LIVE, 0)
    new = vm.run("dmesg").stdout.splitlines()[vm.dmesg_start :]  # type: ignore[attr-defined]
    trouble = [ln for ln in new if KERNEL_TROUBLE.search(ln)]
    assert not trouble, "\n".join(trouble)
    assert vm.run("rmmod multimap").ok


@pytest.mark.parametrize(("backing", "mapping"), combos.combinations())
def test_combination(mm: VM, backing: str, mapping: str) -> None:
    refused = combos.refusal(backing, mapping, has_cma(mm))
    report = ctl(mm, ctl_args(backing, mapping, 16))
    if refused:
        assert (report["ok"], report["stage"], report["errno"]) == (False, "configure", "EINVAL")
        return
    assert report["ok"], report
    assert report["contents_match"], "data written through the mapping != kernel readback"
    assert report["walk_matches_pfns"], "page tables do not map the module's PFNs in order"
    pfns = report["pfns"]
    assert len(pfns) == 16 and len(set(pfns)) == 16 and all(pfns)
    if backing == "contig":
        assert pfns == list(range(pfns[0], pfns[0] + 16))
        assert report["info"]["source"] == combos.contig_source(has_cma(mm))
        assert report["info"]["runs"] == 1
    # pagemap, on a mapping held open: holes for VM_PFNMAP, the module's PFNs otherwise.
    held = hold(mm, ctl_args(backing, mapping, 16))
    try:
        addr = held.report["addr"]
        dump = pagemap(mm, held.pid, addr, addr + 16 * 4096)
        vmflags = dump["vma"]["vmflags"].split()
        if combos.visible_to_pagemap(mapping):
            assert [p["pfn"] for p in dump["pages"]] == held.report["pfns"]
            assert all(p["present"] for p in dump["pages"])
            assert "pf" not in vmflags
        else:
            assert not any(p["present"] for p in dump["pages"])
            assert "pf" in vmflags and "io" in vmflags
        assert "de" in vmflags and "dd" in vmflags  # VM_DONTEXPAND, VM_DONTDUMP
    finally:
        held.release()


@pytest.mark.parametrize("mapping", ["remap", "remap_runs", "insert", "fault", "insert_one"])
def test_lifecycle(mm: VM, mapping: str) -> None:
    actions = ("fork", "munmap-part", "mremap-grow", "close")
    report = ctl(mm, ctl_args("pages", mapping, 8, actions=actions))
    assert report["ok"], report
    results = {a["action"]: a for a in report["actions"]}
    assert all(a["ok"] for a in report["actions"]), report["actions"]
    assert results["mremap-grow"]["errno"] == "EFAULT"


def test_mremap_move(mm: VM) -> None:
    for backing, mapping in [("pages", "remap"), ("vmalloc", "vmalloc_range"), ("pages", "fault")]:
        report = ctl(mm, ctl_args(backing, mapping, 8, actions=("mremap-move", "fork")))
        assert report["ok"] and all(a["ok"] for a in report["actions"]), report


@pytest.mark.parametrize("mapping", ["remap", "remap_runs", "insert", "fault", "insert_one"])
def test_map_private_read_only_works_writable_is_refused(mm: VM, mapping: str) -> None:
    report = ctl(mm, ctl_args("pages", mapping, 4, private=True, actions=("mprotect-write",)))
    assert report["ok"] and report["contents_match"], report
    assert report["actions"][0]["errno"] == "EACCES"
    report = ctl(mm, ctl_args("pages", mapping, 4, private_write=True))
    assert (report["ok"], report["stage"], report["errno"]) == (False, "mmap", "EINVAL")


def test_offsets_and_lengths(mm: VM) -> None:
    whole = ctl(mm, ctl_args("vmalloc", "vmalloc_range", 16, seed=7))
    part = ctl(mm, ctl_args("pages", "remap", 16, offset=4, length=8))
    assert part["ok"] and part["mapped_pages"] == 8 and part["contents_match"], part
    assert whole["ok"]
    for args in (dict(offset=16), dict(offset=4, length=13), dict(length=17)):
        report = ctl(mm, ctl_args("pages", "insert", 16, **args))  # type: ignore[arg-type]
        assert (report["stage"], report["errno"]) == ("mmap", "EINVAL"), (args, report)


@pytest.mark.parametrize(
    ("extra", "errno"),
    [
        (["--pages", "0"], "EINVAL"),
        (["--pages", "65537"], "E2BIG"),
        (["--pages", "18446744073709551615"], "E2BIG"),
        (["--version", "2"], "EINVAL"),
        (["--flags", "1"], "EINVAL"),
    ],
)
def test_bad_configure(mm: VM, extra: list[str], errno: str) -> None:
    report = ctl(mm, ["--list-pages", *extra])
    assert (report["ok"], report["stage"], report["errno"]) == (False, "configure", errno)


def test_rmmod_refused_while_mapped(mm: VM) -> None:
    held = hold(mm, ctl_args("pages", "remap", 4, actions=("close",)))
    try:
        res = mm.run("rmmod multimap")
        # busybox rmmod: delete_module(O_NONBLOCK) -> EWOULDBLOCK while the module is in use
        assert res.status != 0
        assert re.search("in use|temporarily unavailable", res.stderr + res.stdout), res
        assert module_stats(mm)["vmas"] == 1
    finally:
        held.release()
    assert mm.run("rmmod multimap && modprobe multimap").ok
    assert module_stats(mm)["buffers"] == 0


def test_device_node_is_root_only(mm: VM) -> None:
    assert mm.run("stat -c %a:%U /dev/multimap").stdout.strip() == "600:root"


def test_random_run_is_clean(mm: VM) -> None:
    res = mm.run("multimap-fuzz --seed 20261125 --ops 10000", timeout=300)
    assert res.ok, res.stderr
    summary = json.loads(res.stdout)
    assert sum(summary["calls"].values()) > 7000
    assert summary["calls"]["mmap"] - summary["failures"]["mmap"] > 20
    stats = module_stats(mm)
    assert {k: stats[k] for k in LIVE} == dict.fromkeys(LIVE, 0)
