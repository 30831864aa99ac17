"""The lab kernel's config fragments: data, parsed, and checked against a resulting .config."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.kernel.labbuild import config_mismatches, fragments, wanted_options
from lab.profiles import get_profile


def test_fragments_ask_for_what_the_lab_needs() -> None:
    wanted = wanted_options(fragments(get_profile("x86_64"), "lab"))
    for option in ("CONFIG_CMA", "CONFIG_DMA_CMA", "CONFIG_DEBUG_VM", "CONFIG_PAGE_OWNER"):
        assert wanted[option] == "y"
    assert wanted["CONFIG_DEBUG_INFO"] == "y" and wanted["CONFIG_PVH"] == "y"
    assert wanted["CONFIG_VIRTIO_NET"] == "y" and wanted["CONFIG_9P_FS"] == "y"
    assert "CONFIG_KASAN" not in wanted


def test_kasan_profile_adds_kasan_and_later_files_win() -> None:
    wanted = wanted_options(fragments(get_profile("arm64"), "kasan"))
    assert wanted["CONFIG_KASAN"] == "y"
    assert wanted["CONFIG_DEBUG_PAGEALLOC"] == "n"  # lab.config says y, kasan.config n
    assert wanted["CONFIG_SERIAL_AMBA_PL011_CONSOLE"] == "y"


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(LabError, match="unknown lab kernel profile 'kcsan'"):
        fragments(get_profile("x86_64"), "kcsan")


def test_mismatches_name_the_options() -> None:
    config = "CONFIG_CMA=y\n# CONFIG_DEBUG_VM is not set\nCONFIG_HZ=250\nCONFIG_KASAN=y\n"
    wanted = {"CONFIG_CMA": "y", "CONFIG_DEBUG_VM": "y", "CONFIG_HZ": "250", "CONFIG_KASAN": "n"}
    assert config_mismatches(config, wanted) == [
        "CONFIG_DEBUG_VM=y (got unset)",
        "CONFIG_KASAN=n (got y)",
    ]


def test_rerun_comparison() -> None:
    from lab.scenario.bundle import same_failure

    debian = "crash: WARNING: refcount bug in vma_close"
    lab = "crash: WARNING: refcount bug in multimap_buffer_put"
    assert same_failure(debian, debian, True) == (True, "reproduced")
    assert same_failure(debian, lab, True) == (False, "not reproduced")
    ok, why = same_failure(debian, lab, False)
    assert ok and "same WARNING: refcount bug" in why
    # a bare kind is no evidence of the same bug
    assert not same_failure("crash: WARNING in foo", "crash: WARNING in bar", False)[0]
    assert not same_failure("failed at step 1", "failed at step 2", False)[0]


def test_source_tree_errors_name_the_problem(tmp_path: Path) -> None:
    from lab.kernel.labbuild import tree_source

    with pytest.raises(LabError, match="not a kernel tree"):
        tree_source(tmp_path)
    (tmp_path / "Makefile").write_text("VERSION = 6\n")
    (tmp_path / "Kconfig").write_text("mainmenu\n")
    first = tree_source(tmp_path)
    assert first.key.startswith("tree-") and "not a git tree" in first.identity
    (tmp_path / "Kconfig").write_text('mainmenu "changed"\n')
    assert tree_source(tmp_path).key != first.key  # contents changed: another build
    (tmp_path / ".config").write_text("CONFIG_X=y\n")
    with pytest.raises(LabError, match="make mrproper"):
        tree_source(tmp_path)


def test_a_step_failure_signature_names_its_finding() -> None:
    """A program that does not compile is not the failure of one that exits 2; what varies
    between runs of one failure (addresses, PIDs, timings) is not part of it."""
    from lab.scenario.bundle import same_failure, signature

    def failed(detail: str) -> dict[str, object]:
        step = {"index": 0, "kind": "program", "ok": False, "detail": detail}
        return {"outcome": "failed", "failing_step": 0, "steps": [step], "crashes": []}

    status = signature(failed("../t.c exited with status 2, expected 0"))
    assert status == "failed at step 0: ../t.c exited with status 2, expected 0"
    compile_error = signature(failed("../t.c does not compile:\nt.c:1:10: fatal error: x.h"))
    assert compile_error == "failed at step 0: ../t.c does not compile: t.c:1:10: fatal error: x.h"
    assert not same_failure(status, compile_error, True)[0]
    pfn_a = signature(failed("witnesses disagree at 0x7f12a000: pfn 123456 in 0.52 s (pid 731)"))
    pfn_b = signature(failed("witnesses disagree at 0x7f88b000: pfn 654321 in 0.61 s (pid 912)"))
    assert pfn_a == pfn_b and same_failure(pfn_a, pfn_b, True)[0]
    # a bundle written before the signature named the finding still compares
    assert same_failure("failed at step 0", status, True)[0]
    assert not same_failure("failed at step 1", status, True)[0]
    # a heading's line alone ("...:") said nothing: the line it announces is the finding
    repeat = signature(failed("the mapping is not what the step expects:\n  pages repeat: 16"))
    assert repeat == "failed at step 0: the mapping is not what the step expects: pages repeat: 16"
    assert same_failure(
        "failed at step 0: the mapping is not what the step expects:", repeat, True
    )[0]
    # an exit status is never made N: a segfault is not an abort
    segv = signature(failed("`./t` exit status 139, expected 0"))
    abort = signature(failed("`./t` exit status 134, expected 0"))
    assert not same_failure(segv, abort, False)[0]
    # the crash-title leniency across kernels does not reach a step's finding
    in_use_a = signature(failed("rmmod: ERROR: Module multimap is in use by: a"))
    in_use_b = signature(failed("rmmod: ERROR: Module multimap is in use by: b"))
    assert not same_failure(in_use_a, in_use_b, False)[0]
