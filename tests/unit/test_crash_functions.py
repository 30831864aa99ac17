"""The culprit function: goldens that expect "in corrupted" (tests/data/crashlogs) are joined
here by positive cases for the same families, and by the frame-skipping rules."""

from __future__ import annotations

import pytest

from lab.crash import find_reports
from lab.crash.stack import demangle

CASES = [
    (  # HANG: the hang extractor skips waiting frames
        "INFO: task a:1 blocked for more than 120 seconds.\nCall Trace:\n __schedule+0x1/0x2\n"
        " schedule+0x1/0x2\n wait_for_completion+0x1/0x2\n foo_flush+0x1/0x2\n bar+0x1/0x2\n",
        "HANG",
        "INFO: task hung in foo_flush",
        "foo_flush",
    ),
    (  # HANG: synchronize_* victims are grouped under synchronize_rcu
        "INFO: task a:1 blocked for more than 120 seconds.\nCall Trace:\n __schedule+0x1/0x2\n"
        " synchronize_net+0x1/0x2\n foo_exit+0x1/0x2\n",
        "HANG",
        "INFO: task hung in synchronize_rcu",
        "synchronize_rcu",
    ),
    (  # LEAK: allocator frames are skipped
        "BUG: memory leak\nunreferenced object 0xffff8880 (size 64):\n  backtrace:\n"
        "    [<ffffffff81>] kmem_cache_alloc_trace+0x1/0x2\n    [<ffffffff82>] foo_open+0x1/0x2\n",
        "LEAK",
        "memory leak in foo_open",
        "foo_open",
    ),
    (  # UBSAN: the handler is skipped
        "UBSAN: shift-out-of-bounds in drivers/foo.c:10:5\nCall Trace:\n dump_stack+0x1/0x2\n"
        " __ubsan_handle_shift_out_of_bounds.cold+0x1/0x2\n foo_shift+0x1/0x2\n",
        "UBSAN",
        "UBSAN: shift-out-of-bounds in foo_shift",
        "foo_shift",
    ),
    (  # GPF: the faulting function, .constprop.0 dropped
        "general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000\n"
        "RIP: 0010:foo_walk.constprop.0+0x1/0x2\nCall Trace:\n bar+0x1/0x2\n",
        "GPF",
        "general protection fault in foo_walk",
        "foo_walk",
    ),
    (  # GPF: a skipped RIP (string helper) hands over to the call trace, .isra.3 dropped
        "general protection fault: 0000 [#1] SMP\nRIP: 0010:strlen+0x1/0x2\nCall Trace:\n"
        " foo_name.isra.3+0x1/0x2\n bar+0x1/0x2\n",
        "GPF",
        "general protection fault in foo_name",
        "foo_name",
    ),
    (  # double fault: only the RIP line counts
        "PANIC: double fault, error_code: 0x0\nRIP: 0010:foo_recurse+0x1/0x2\n",
        "PANIC",
        "PANIC: double fault in foo_recurse",
        "foo_recurse",
    ),
    (  # bad usercopy: usercopy_abort, __check_object_size.cold and __check_heap_object skipped
        "kernel BUG at mm/usercopy.c:101!\nRIP: 0010:usercopy_abort+0x1/0x2\nCall Trace:\n"
        " usercopy_abort+0x1/0x2\n __check_heap_object+0x1/0x2\n"
        " __check_object_size.cold+0x1/0x2\n foo_read+0x1/0x2\n",
        "BUG",
        "BUG: bad usercopy in foo_read",
        "foo_read",
    ),
    (  # soft lockup: the frame before the syscall dispatcher, __x64_ stripped
        "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [a:1]\nRIP: 0010:foo_spin+0x1/0x2\n"
        "Call Trace:\n foo_spin+0x1/0x2\n __x64_sys_foo+0x1/0x2\n do_syscall_64+0x1/0x2\n",
        "HANG",
        "BUG: soft lockup in sys_foo",
        "sys_foo",
    ),
]


@pytest.mark.parametrize(("log", "kind", "title", "func"), CASES, ids=[c[2] for c in CASES])
def test_function_extraction(log: str, kind: str, title: str, func: str) -> None:
    report = find_reports(log)[0]
    assert (report.kind, report.title, report.function) == (kind, title, func)


def test_no_frame_is_corrupted() -> None:
    (report,) = find_reports("INFO: task a:1 blocked for more than 120 seconds.\n")
    assert report.title == "INFO: task hung in corrupted" and report.function is None


def test_questionable_frames_are_not_culprits() -> None:
    log = (
        "BUG: scheduling while atomic: a/1/0x00000002\nCall Trace:\n ? foo+0x1/0x2\n bar+0x1/0x2\n"
    )
    assert find_reports(log)[0].title == "BUG: scheduling while atomic in bar"


def test_titles_drop_run_specific_parts() -> None:
    log = "INFO: Freed in foo_free+0x1a/0x20 age=12 cpu=1 pid=42\n"
    assert find_reports(log)[0].title == "INFO: Freed in foo_free age=NUM cpu=NUM pid=NUM"


def test_demangle() -> None:
    assert demangle("_Z8fakeNameiii") == "fakeName"
    assert demangle("_ZN2ns4funcEv") == "ns::func"
    assert demangle("plain_c") == "plain_c"
    assert demangle("_Z99x") == "_Z99x"


def test_demangle_rust() -> None:
    """Rust symbols as syzkaller titles them: both schemes, no crate disambiguator, no hash."""
    v0 = "_RNvMs3_NtCshgDM7dBCdno_11rust_binder7processNtB5_7Process10update_ref"
    assert demangle(v0) == "<rust_binder::process::Process>::update_ref"
    assert demangle("_RNvCs1234_7mycrate3foo") == "mycrate::foo"
    assert demangle("_ZN4core9panicking5panic17h0123456789abcdefE") == "core::panicking::panic"
    legacy = "_ZN6kernel4sync3arc12Arc$LT$T$GT$4drop17h1234567890abcdefE"
    assert demangle(legacy) == "kernel::sync::arc::Arc<T>::drop"
    assert demangle("_Rnot_rust") == "_Rnot_rust"  # c++filt cannot: kept as it is


def test_demangle_rust_without_cxxfilt(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.crash import stack

    monkeypatch.setattr("lab.hosttools.which", lambda _tool: None)
    stack.demangle_rust.cache_clear()
    try:
        assert demangle("_RNvCs1234_7mycrate3bar") == "_RNvCs1234_7mycrate3bar"
    finally:
        stack.demangle_rust.cache_clear()
