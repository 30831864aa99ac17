"""The lab-built kernel on x86_64: built from Debian's linux-source-6.1 with the lab fragment
(cached; about 5 minutes cold on 2 cores), booted, and put through the whole scenario library:
with it the CMA scenarios run on x86_64 and the DEBUG_VM-only bug reproducers see their bug.
Its vmlinux has debug info, so crash stacks decode to file:line in the kernel too."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.kernel import Kernel, KernelSpec
from lab.kernel.labbuild import lab_kernel
from lab.kernel.pvh import has_pvh_note
from lab.paths import REPO
from lab.profiles import get_profile
from lab.scenario.load import load_dir, load_file
from lab.scenario.runner import Outcome, VMPool, run_scenario
from lab.symbolize import has_debug_info

pytestmark = pytest.mark.integration
LIBRARY = {item.scenario.name: item for item in load_dir(REPO / "scenarios")}
# Scenarios that need what only the lab kernel has: these must run, not be skipped.
NEEDS_LAB_KERNEL = (
    "contig-source-cma",
    "cma-exhaustion",
    "bug-reserved",
    "bug-reserved-twin",
    "fix-walk-thp-debug-vm",
    "fix-cma-vmsplice",
    "fix-cma-longterm-pin",
)


@pytest.fixture(scope="module")
def kernel() -> Kernel:
    return lab_kernel(get_profile("x86_64"), "lab")


@pytest.fixture(scope="module")
def pool(kernel: Kernel) -> Iterator[VMPool]:
    p = VMPool(KernelSpec(lab="lab"))
    yield p
    p.close()


def test_lab_config_and_image(kernel: Kernel) -> None:
    for option in ("CONFIG_CMA", "CONFIG_DMA_CMA", "CONFIG_DEBUG_VM", "CONFIG_PAGE_OWNER"):
        assert kernel.config_value(option) == "y", option
    assert kernel.config_value("CONFIG_KASAN") is None
    assert kernel.image.name == "vmlinux" and has_pvh_note(kernel.image)
    assert has_debug_info(kernel.image)
    assert kernel.identity.startswith("lab kernel (lab profile) from linux-source-6.1")


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_scenario_on_lab_kernel(pool: VMPool, name: str, tmp_path: Path) -> None:
    loaded = LIBRARY[name]
    if "x86_64" not in loaded.scenario.arches:
        pytest.skip("not an x86_64 scenario")
    result = run_scenario(loaded, "x86_64", pool, tmp_path)
    if name in NEEDS_LAB_KERNEL:
        assert result.outcome == Outcome.PASSED, result.render()
    elif result.outcome == Outcome.SKIPPED:
        pytest.skip(result.message)
    assert result.outcome == Outcome.PASSED, result.render()


def test_bad_page_report_is_decoded(pool: VMPool, tmp_path: Path) -> None:
    result = run_scenario(LIBRARY["bug-reserved"], "x86_64", pool, tmp_path)
    assert result.outcome == Outcome.PASSED, result.render()
    (crash, *_more) = result.crashes
    assert crash["kind"] == "BAD_PAGE" and crash["title"].startswith("BUG: Bad page state in ")
    places = {f["function"]: f["location"] for f in crash["frames"]}
    assert places["bad_page"].startswith("mm/page_alloc.c:")
    assert places["multimap_free_pages"].startswith("module/multimap.c:")
    assert "mm/page_alloc.c:" in crash["decoded"] and "module/multimap.c:" in crash["decoded"]
    saved = (tmp_path / "bug-reserved-x86_64" / "crash-0.txt").read_text()
    assert "module/multimap.c:" in saved


def test_bundle_reruns_on_another_kernel(tmp_path: Path) -> None:
    """A crash caught on Debian's kernel, rerun from its bundle on the lab kernel."""
    debian = VMPool()
    try:
        loaded = load_file(REPO / "tests" / "data" / "failing" / "refcount-unexpected.yaml")
        result = run_scenario(loaded, "x86_64", debian, tmp_path)
    finally:
        debian.close()
    assert result.outcome == Outcome.CRASH, result.render()
    bundle = tmp_path / "refcount-unexpected-x86_64" / "bundle"
    rerun = subprocess.run(
        [str(bundle / "repro.sh"), "--lab-kernel", "lab"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert "rerun on lab kernel (lab profile)" in rerun.stdout, rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, rerun.stdout
    verdict = rerun.stdout.splitlines()[-1]  # "not reproduced ..." must not pass
    other_kernel = r"reproduced( on another kernel: same .+, title's function differs)?"
    other_kernel += r" \(the rerun's logs: .+\)"
    assert re.fullmatch(other_kernel, verdict), rerun.stdout


def test_gdb_reads_module_and_kernel_symbols(kernel: Kernel) -> None:
    """The printed gdb line works: multimap's symbols land where the guest loaded it."""
    from lab.build import build_module
    from lab.gdb import add_symbol_file, gdb_argv, module_sections
    from lab.netutil import free_loopback_port
    from lab.session import prepare
    from lab.vm import VM, VMOptions

    kern, initramfs = prepare("x86_64", KernelSpec(lab="lab"))
    port = free_loopback_port()
    options = VMOptions(arch="x86_64", gdb_port=port)  # nokaslr: every lab guest has it
    with VM(kern, initramfs, options) as vm:
        assert vm.run("modprobe multimap max_pages=4242").ok
        load = add_symbol_file(build_module(kern).ko, module_sections(vm))
        argv = gdb_argv(kern.image, port, (load,))
        argv[1:1] = ["-nx", "-batch"]
        argv += ["-ex", "p max_pages", "-ex", "p (char *)linux_banner", "-ex", "detach"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert "$1 = 4242" in proc.stdout, proc.stdout + proc.stderr
        assert f'"Linux version {kern.release}' in proc.stdout, proc.stdout
        assert vm.run("echo alive").stdout.strip() == "alive"  # detached, guest runs on


@pytest.fixture(scope="module")
def kasan_pool() -> Iterator[VMPool]:
    lab_kernel(get_profile("x86_64"), "kasan")  # built once, cached (KASAN adds a few minutes)
    p = VMPool(KernelSpec(lab="kasan"))
    yield p
    p.close()


@pytest.mark.parametrize("name", sorted(n for n in LIBRARY if n.startswith("bug-")))
def test_bug_modes_on_the_kasan_kernel(kasan_pool: VMPool, name: str, tmp_path: Path) -> None:
    """Every reproducer sees its bug and every twin is clean on the kasan profile too; for the
    use-after-free, KASAN itself is the witness."""
    result = run_scenario(LIBRARY[name], "x86_64", kasan_pool, tmp_path)
    assert result.outcome == Outcome.PASSED, result.render()
    if name == "bug-uaf-kasan":
        titles = [c["title"] for c in result.crashes]
        assert any(t.startswith("KASAN: use-after-free") for t in titles), titles
        frames = [f["function"] for c in result.crashes for f in c["frames"]]
        assert any(f.startswith("multimap_") for f in frames), frames
