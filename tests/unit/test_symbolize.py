"""Frame parsing and path shortening for stack decoding, on a real recorded report (a Bad page
state caught by the lab kernel with multimap's reserved bug mode)."""

from __future__ import annotations

from pathlib import Path

from lab.crash import find_reports
from lab.symbolize import parse_frames, shorten

LOG = Path(__file__).resolve().parents[1] / "data" / "multimap-bad-page.log"


def test_frames_of_a_recorded_report() -> None:
    (report, *_rest) = find_reports(LOG.read_text())
    frames = parse_frames(report.text)
    names = [f.func for f in frames]
    # the unreliable "? do_mas_align_munmap..." frame is skipped, the module is recognised
    assert "do_mas_align_munmap.constprop.0" not in names
    assert names[:3] == ["dump_stack_lvl", "dump_stack", "bad_page"]
    mod = [f for f in frames if f.module == "multimap"]
    assert [f.func for f in mod] == [
        "multimap_free_pages",
        "multimap_buffer_put",
        "multimap_release",
    ]
    first = mod[0]
    assert (first.offset, first.size, first.is_pc) == (0x42, 0x7C, False)


def test_pc_lines_are_not_return_addresses() -> None:
    (rip,) = parse_frames("RIP: 0010:multimap_read+0x1c/0x40 [multimap]")
    assert rip.is_pc and rip.module == "multimap" and rip.func == "multimap_read"
    (pc,) = parse_frames("[   12.3] pc : foo_bar.isra.0+0x8/0x20")
    assert pc.is_pc and pc.module is None
    (lr,) = parse_frames("lr : foo+0x8/0x20 [multimap]")
    assert not lr.is_pc
    assert parse_frames("RIP: 0033:0x440490") == []  # user space: nothing to decode
    assert parse_frames(" ? do_munmap+0x3a7/0x3ef") == []


def test_build_paths_are_shortened() -> None:
    assert (
        shorten("/root/.cache/remaplab/modules/.x86_64-a92.tmp-2921/src/multimap.c")
        == "module/multimap.c"
    )
    assert (
        shorten("/c/kernels/debian-x/root/usr/src/linux-headers-6.1.0-56-common/include/a.h")
        == "include/a.h"
    )
    assert (
        shorten("/c/kernel-src/linux-source-6.1-6.1.192-2/linux-source-6.1/mm/page_alloc.c")
        == "mm/page_alloc.c"
    )
    assert shorten("/src/linux/mm/memory.c", (("/src/linux/", ""),)) == "mm/memory.c"


def test_a_warning_and_the_trace_frame_repeating_the_pc_are_pcs() -> None:
    """__warn() prints the trapping address; arm64's call trace starts with the trapping pc
    itself.  Read as return addresses, they decoded to the line after the WARN_ON (recorded
    from a user's driver under the lab: x86_64 and arm64, 6.1)."""
    x86 = parse_frames(
        "WARNING: CPU: 0 PID: 165 at drivers/vmap_drv.c:28 vmap_drv_mmap+0x40/0x4e [vmap_drv]\n"
        "RIP: 0010:vmap_drv_mmap+0x40/0x4e [vmap_drv]\n"
        "Call Trace:\n <TASK>\n mmap_region+0x4a4/0x6e0\n"
    )
    assert [(f.func, f.is_pc) for f in x86] == [
        ("vmap_drv_mmap", True),
        ("vmap_drv_mmap", True),
        ("mmap_region", False),
    ]
    arm64 = parse_frames(
        "pc : vmap_drv_mmap+0x64/0x74 [vmap_drv]\n"
        "lr : mmap_file+0x28/0x5c\n"
        "Call trace:\n"
        " vmap_drv_mmap+0x64/0x74 [vmap_drv]\n"
        " mmap_region+0x218/0x740\n"
    )
    assert [(f.func, f.is_pc) for f in arm64] == [
        ("vmap_drv_mmap", True),
        ("mmap_file", False),
        ("vmap_drv_mmap", True),  # the pc again, not a return address
        ("mmap_region", False),
    ]


def test_only_a_traces_first_frame_can_repeat_the_pc() -> None:
    """Recursion ending in f(); BUG(): the same function and offset deeper in the trace is a
    return address, decoded to its call."""
    frames = parse_frames(
        "pc : f+0x10/0x40\nCall trace:\n f+0x10/0x40\n f+0x10/0x40\n g+0x8/0x20\n"
    )
    assert [f.is_pc for f in frames] == [True, True, False, False]
