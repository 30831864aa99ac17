"""Bring your own code, in real guests on both arches: a driver the lab did not write (examples/
driver), its own test program, a deliberately broken variant the witnesses must catch, and the
error paths (a module that does not build or load, a program that does not compile)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.scenario.load import load_file
from lab.scenario.runner import Outcome, VMPool, run_scenario

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"


@pytest.fixture(scope="module")
def byo_pool() -> Iterator[VMPool]:
    p = VMPool()
    yield p
    p.close()


def test_example_driver_passes_every_witness(arch: str, byo_pool: VMPool, tmp_path: Path) -> None:
    result = run_scenario(
        load_file(REPO / "examples/scenarios/exmap.yaml"), arch, byo_pool, tmp_path
    )
    assert result.outcome == Outcome.PASSED, result.render()
    check = result.steps[1].evidence
    assert check["walk_pfns"] == check["physical_pfns"] == check["agreed_pfns"]
    assert len(set(check["agreed_pfns"])) == 16 and "pf" in check["vmflags"]
    released = result.steps[-1].evidence
    assert released["status"] == 0 and "released" in released["stdout"]


def test_broken_driver_is_caught_by_the_witnesses(
    arch: str, byo_pool: VMPool, tmp_path: Path
) -> None:
    loaded = load_file(DATA / "byo" / "exmap-broken.yaml")
    result = run_scenario(loaded, arch, byo_pool, tmp_path)
    assert result.outcome == Outcome.FAILED, result.render()
    detail = result.steps[result.failing_step or 0].detail
    assert "does not read back" in detail and "pages repeat" in detail
    assert "pages 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15" in detail
    bundle = Path(result.log_dir) / "bundle"
    assert (bundle / "sources/examples/driver/exmap.c").is_file()  # from ../../../examples
    # the module as it ran, with its debug info: `triage --module` decodes with it offline
    assert b".debug_info" in (bundle / "bin" / "exmap.ko").read_bytes()
    rerun = subprocess.run(
        [str(bundle / "repro.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert rerun.stdout.splitlines()[-1].startswith("reproduced"), rerun.stdout


def test_a_programs_own_headers_travel_with_its_bundle(byo_pool: VMPool, tmp_path: Path) -> None:
    """A program that includes a header of its own (above its folder, too) fails; its bundle
    carries the header, reruns where the originals are gone, and a rerun that fails otherwise
    at the same step (the header broken: it no longer compiles) is no reproduction."""
    proj = tmp_path / "proj"
    (proj / "scen").mkdir(parents=True)
    (proj / "prog").mkdir()
    (proj / "common.h").write_text("#define STATUS 2\n")
    (proj / "prog" / "main.c").write_text(
        '#include "../common.h"\nint main(void) { return STATUS; }\n'
    )
    (proj / "scen" / "own-headers.yaml").write_text(
        "name: own-headers\ndescription: a program with a header of its own exits 2\n"
        "arches: [x86_64]\nsteps:\n  - program: {source: ../prog/main.c}\n"
    )
    result = run_scenario(
        load_file(proj / "scen" / "own-headers.yaml"), "x86_64", byo_pool, tmp_path / "r"
    )
    assert result.outcome == Outcome.FAILED, result.render()
    bundle = tmp_path / "moved"
    shutil.copytree(Path(result.log_dir) / "bundle", bundle)
    shutil.rmtree(proj)
    assert (bundle / "sources" / "common.h").is_file()
    assert "exited with status 2" in (bundle / "signature.txt").read_text()

    def rerun() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bundle / "repro.sh")], capture_output=True, text=True, timeout=600, check=False
        )

    again = rerun()
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1].startswith("reproduced"), again.stdout
    (bundle / "sources" / "common.h").write_text("#error broken\n")
    broken = rerun()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert broken.stdout.splitlines()[-1].startswith("not reproduced"), broken.stdout


def test_an_expected_refusal_that_maps_touches_nothing(byo_pool: VMPool, tmp_path: Path) -> None:
    """A map step that expects an errno, on a driver that maps after all: the step says the
    mapping succeeded and how many pages, and no token was written into it."""
    scen = tmp_path / "scen"
    scen.mkdir()
    (scen / "refusal.yaml").write_text(
        "name: refusal\ndescription: a mapping expected to fail succeeds\narches: [x86_64]\n"
        f"modules:\n  - source: {REPO / 'examples' / 'driver'}\n"
        "steps:\n  - map: {device: /dev/exmap, length: 64K, errno: EINVAL, stage: mmap}\n"
    )
    result = run_scenario(load_file(scen / "refusal.yaml"), "x86_64", byo_pool, tmp_path / "r")
    assert result.outcome == Outcome.FAILED, result.render()
    step = result.steps[0]
    assert step.detail == "expected EINVAL at mmap, but mmap() succeeded for 16 pages"
    assert "tokens_read_back" not in step.evidence["report"]


def test_a_failed_scenario_leaves_nothing_to_the_next(
    arch: str, byo_pool: VMPool, tmp_path: Path
) -> None:
    """A failed step skips the unload of the scenario's modules: the next scenario loading the
    same module must not meet it (insmod's "File exists" blamed the wrong scenario)."""
    broken = run_scenario(load_file(DATA / "byo" / "exmap-broken.yaml"), arch, byo_pool, tmp_path)
    assert broken.outcome == Outcome.FAILED, broken.render()
    after = run_scenario(
        load_file(REPO / "examples/scenarios/exmap.yaml"), arch, byo_pool, tmp_path / "next"
    )
    assert after.outcome == Outcome.PASSED, after.render()


def test_a_vmalloc_driver_and_its_warning(arch: str, byo_pool: VMPool, tmp_path: Path) -> None:
    """A second driver the lab did not write (from a new-user walk-through): a vmalloc_user()
    buffer mapped with remap_vmalloc_range() passes every witness; with bug=1 its mmap WARNs,
    which the scenario expects.  The report names the user's source file (not the lab's
    temporary build copy) and decodes the trapping address to the WARN_ON_ONCE line itself."""
    good = run_scenario(load_file(DATA / "byo" / "vmap-good.yaml"), arch, byo_pool, tmp_path)
    assert good.outcome == Outcome.PASSED, good.render()
    warn = run_scenario(load_file(DATA / "byo" / "vmap-warn.yaml"), arch, byo_pool, tmp_path)
    assert warn.outcome == Outcome.PASSED, warn.render()
    (crash,) = warn.crashes
    assert crash["title"] == "WARNING in vmap_drv_mmap"
    assert crash["step"] == {"index": 0, "kind": "map"}  # the mmap of step 0 WARNed
    source = DATA / "byo" / "vmapdrv" / "vmap_drv.c"
    warn_line = next(
        n for n, ln in enumerate(source.read_text().splitlines(), 1) if "WARN_ON" in ln
    )
    decoded = crash["decoded"]
    assert ".tmp-" not in decoded, decoded
    assert f"at {source}:{warn_line} vmap_drv_mmap+" in decoded  # the kernel's own __FILE__
    pc = next(ln for ln in decoded.splitlines() if ln.startswith(("RIP:", "pc :")))
    assert pc.endswith(f"{source}:{warn_line}"), pc


def test_a_report_from_a_program_names_the_program(byo_pool: VMPool, tmp_path: Path) -> None:
    """The WARNING raised in the program's own mmap names the task as the user wrote it
    ("Comm: user"), not as the lab stores it (a build digest before the name cut it to 15
    characters: "Comm: 6b14c8c3fe06-us")."""
    drv = os.path.relpath(DATA / "byo" / "vmapdrv", tmp_path)
    scenario = tmp_path / "program-warn.yaml"
    scenario.write_text(
        "name: program-warn\ndescription: the program's mmap WARNs\narches: [x86_64]\n"
        f"modules:\n  - source: {drv}\n    params: {{npages: 8, bug: 1}}\n"
        f"steps:\n  - program: {{source: {drv}/user.c, status: null}}\n"
        "expect:\n  kernel: {kind: WARNING}\n"
    )
    result = run_scenario(load_file(scenario), "x86_64", byo_pool, tmp_path)
    assert result.outcome == Outcome.PASSED, result.render()
    (crash,) = result.crashes
    assert crash["title"] == "WARNING in vmap_drv_mmap"
    assert re.search(r"\bComm: user\b", crash["text"]), crash["text"]


def test_a_fault_handler_driver(arch: str, byo_pool: VMPool, tmp_path: Path) -> None:
    """A third kind of foreign driver: pages inserted by vm_ops->fault.  Mapped within its
    buffer it passes every witness (pagemap sees it: not VM_PFNMAP); mapped past it, the pages
    its handler refuses are named, as unmapped, not as witnesses disagreeing."""
    good = run_scenario(load_file(DATA / "byo" / "faultmap.yaml"), arch, byo_pool, tmp_path)
    assert good.outcome == Outcome.PASSED, good.render()
    assert good.steps[3].evidence["pagemap_present"] == 8
    over = load_file(DATA / "byo" / "faultmap-overlong.yaml")
    bad = run_scenario(over, arch, byo_pool, tmp_path)
    assert bad.outcome == Outcome.FAILED and bad.failing_step == 0, bad.render()
    detail = bad.steps[0].detail
    assert "pages [8, 9, 10, 11, 12, 13, 14, 15] fault on access" in detail
    assert "witnesses disagree" not in detail and "are not (no page-table entry" in detail


def test_module_that_does_not_build(arch: str, byo_pool: VMPool, tmp_path: Path) -> None:
    result = run_scenario(load_file(DATA / "byo-errors/badbuild.yaml"), arch, byo_pool, tmp_path)
    assert result.outcome == Outcome.BUILD_FAILURE, result.render()
    assert "badbuild.c:7" in result.message and "undeclared_thing" in result.message


def test_module_that_does_not_load(arch: str, byo_pool: VMPool, tmp_path: Path) -> None:
    result = run_scenario(load_file(DATA / "byo-errors/badload.yaml"), arch, byo_pool, tmp_path)
    assert result.outcome == Outcome.FAILED, result.render()
    assert "insmod /tmp/remaplab-modules/badload.ko" in result.message
    assert "No such device" in result.message and "no such hardware here" in result.message


def test_a_misspelt_module_parameter_is_refused(
    arch: str, byo_pool: VMPool, tmp_path: Path
) -> None:
    """The kernel loads a module with a parameter it lacks and only logs "unknown parameter
    'npage' ignored": a misspelt `bug: 1` would quietly test the correct driver."""
    scenario = load_file(DATA / "byo-errors/misspelt-param.yaml")
    result = run_scenario(scenario, arch, byo_pool, tmp_path)
    assert result.outcome == Outcome.FAILED, result.render()
    assert "has no parameter 'npage' (the kernel loaded it and ignored it" in result.message
    assert "its parameters: npages)" in result.message
    assert result.steps == []  # refused before any step ran


def test_program_that_does_not_compile(arch: str, byo_pool: VMPool, tmp_path: Path) -> None:
    result = run_scenario(load_file(DATA / "byo-errors/badprog.yaml"), arch, byo_pool, tmp_path)
    assert result.outcome == Outcome.FAILED, result.render()
    detail = result.steps[0].detail
    assert "badprog.c does not compile" in detail and "badprog.c:4" in detail
    assert "missing_variable" in detail


def test_pages_that_fault_are_named(arch: str, byo_pool: VMPool, tmp_path: Path) -> None:
    """A driver that maps fewer pages than asked (here: a file shorter than the mapping) makes
    the holder's accesses fault; the step says which pages, and the holder survives to say it."""
    result = run_scenario(load_file(DATA / "byo-errors/short-file.yaml"), arch, byo_pool, tmp_path)
    assert result.outcome == Outcome.FAILED, result.render()
    detail = result.steps[1].detail
    assert "pages [4, 5, 6, 7] fault on access (SIGBUS" in detail, detail
