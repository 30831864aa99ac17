"""multimap in booted guests, both arches: every combination, every lifecycle, every refusal,
stats back to zero, a clean kernel log, and a seeded random run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
        (["--version", "1"], "EINVAL"),  # UAPI 1 (ioctl magic 0xb6) is gone
        (["--version", "3"], "EINVAL"),
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


def _actions(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["action"]: a for a in report["actions"]}


@pytest.mark.parametrize(
    ("backing", "mapping"),
    [
        ("pages", "insert"),
        ("pages", "insert_one"),
        ("vmalloc", "vmalloc_range"),
        ("pages", "fault"),
    ],
)
def test_madvise_dontneed_refaults_same_data(mm: VM, backing: str, mapping: str) -> None:
    """Review finding 3: the zapped pages fault back (was SIGBUS), tokens and readback intact."""
    report = ctl(mm, ctl_args(backing, mapping, 16, actions=("madvise-dontneed", "readback")))
    act = _actions(report)
    assert act["madvise-dontneed"]["ok"], report
    assert str(act["madvise-dontneed"]["detail"]).startswith("zapped; every page faulted back")
    assert act["readback"]["ok"], report


def test_madvise_dontneed_refused_on_pfnmap(mm: VM) -> None:
    report = ctl(mm, ctl_args("pages", "remap_runs", 8, actions=("madvise-dontneed",)))
    act = _actions(report)["madvise-dontneed"]
    assert (act["ok"], act["errno"]) == (True, "EINVAL"), report


@pytest.mark.parametrize("mapping", ["insert", "remap"])
def test_walk_agrees_with_pagemap_for_every_kind_of_vma(mm: VM, mapping: str) -> None:
    """Review finding 1: 4K anon, THP, hole, untouched, hugetlb, multimap's own mapping."""
    assert mm.run("echo 1 > /proc/sys/vm/nr_hugepages").ok
    try:
        report = ctl(mm, ctl_args("pages", mapping, 16, actions=("walk-kinds", "walk-tagged")))
    finally:
        assert mm.run("echo 0 > /proc/sys/vm/nr_hugepages").ok
    assert report["walk_matches_pfns"], report
    kinds = _actions(report)["walk-kinds"]
    assert kinds["ok"], kinds
    detail = str(kinds["detail"])
    assert "thp=ok(huge)" in detail and "hugetlb=ok" in detail, detail  # really a huge page
    assert _actions(report)["walk-tagged"]["ok"], report


def test_pfns_hidden_without_cap_sys_admin(mm: VM) -> None:
    """Review finding 4: pagemap's rule; an unprivileged opener reads 0 for every PFN."""
    assert mm.run("rmmod multimap && modprobe multimap dev_mode=0666").ok
    try:
        nobody = ctl(mm, ["--as-user", "65534", *ctl_args("pages", "insert", 4)])
        root = ctl(mm, ctl_args("pages", "insert", 4))
    finally:
        assert mm.run("rmmod multimap && modprobe multimap").ok
    assert nobody["ok"] and nobody["info"]["pfns_hidden"], nobody
    assert nobody["pfns"] == [0] * 4 and nobody["walk"] == [0] * 4, nobody
    assert not root["info"]["pfns_hidden"] and all(root["pfns"]), root
    assert root["walk"] == root["pfns"]


def test_contig_on_cma_is_pfnmap_only(mm: VM) -> None:
    """Review finding 2: no vmsplice or long-term pin can hold a CMA page (arm64 Debian: CMA)."""
    if not has_cma(mm):
        pytest.skip("no CMA in this kernel")
    for mapping in ("insert", "insert_one", "fault"):
        report = ctl(mm, ctl_args("contig", mapping, 16))
        assert (report["stage"], report["errno"]) == ("configure", "EINVAL"), report
    report = ctl(mm, ctl_args("contig", "remap_runs", 16, actions=("longterm-pin", "vmsplice")))
    act = _actions(report)
    assert report["info"]["source"] == "cma", report
    assert (act["longterm-pin"]["ok"], act["longterm-pin"]["errno"]) == (True, "EFAULT"), report
    assert (act["vmsplice"]["ok"], act["vmsplice"]["errno"]) == (True, "EFAULT"), report


def test_order0_pages_pin_and_splice(mm: VM) -> None:
    report = ctl(mm, ctl_args("pages", "insert", 16, actions=("longterm-pin", "vmsplice")))
    act = _actions(report)
    assert act["longterm-pin"]["ok"] and act["vmsplice"]["ok"], report


def test_ioctl_magic_is_unregistered(tmp_path: Path) -> None:
    """Review finding 5: the magic must not be one ioctl-number.rst gives to a subsystem."""
    from lab.linux_source import linux_source

    header = (Path(__file__).resolve().parents[2] / "module/uapi/multimap.h").read_text()
    magic = int(re.search(r"#define MULTIMAP_IOC_MAGIC\s+(0x[0-9a-fA-F]+)", header).group(1), 16)  # type: ignore[union-attr]
    doc = "Documentation/userspace-api/ioctl/ioctl-number.rst"
    source = linux_source()
    source.extract(tmp_path, (doc,))
    table = (tmp_path / source.package / doc).read_text()
    codes = {int(m.group(1), 16) for m in re.finditer(r"^(0x[0-9A-Fa-f]{2})\s", table, re.M)}
    assert 0xB6 in codes and magic not in codes, hex(magic)


def test_random_run_is_clean(mm: VM) -> None:
    res = mm.run("multimap-fuzz --seed 20261125 --ops 10000", timeout=300)
    assert res.ok, res.stderr
    summary = json.loads(res.stdout)
    assert sum(summary["calls"].values()) > 7000
    assert summary["calls"]["mmap"] - summary["failures"]["mmap"] > 20
    stats = module_stats(mm)
    assert {k: stats[k] for k in LIVE} == dict.fromkeys(LIVE, 0)
