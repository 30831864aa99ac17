"""Evidence is never thrown away: a boot that fails, a console that stays silent, a scenario
that fails, each leaves the console log, QEMU's argv and stderr and the step log where the
message says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.errors import BootError
from lab.log import quiet
from lab.scenario.load import load_text
from lab.scenario.runner import Outcome, VMPool, run_scenario
from lab.session import prepare
from lab.vm import VM, VMOptions

PANICS_AT_BOOT = """name: panics-at-boot
description: a kernel with no init to run panics before the guest is ready
arches: [x86_64]
boot: {append: [rdinit=/nonexistent, init=/nonexistent]}
steps: [{run: {command: 'true'}}]
"""


def test_boot_failure_keeps_its_evidence(tmp_path: Path) -> None:
    from lab.scenario.load import Loaded

    path = tmp_path / "panics-at-boot.yaml"
    path.write_text(PANICS_AT_BOOT)
    loaded = Loaded(load_text(PANICS_AT_BOOT, path), path, PANICS_AT_BOOT)
    pool = VMPool()
    try:
        result = run_scenario(loaded, "x86_64", pool, tmp_path / "out")
    finally:
        pool.close()
    assert result.outcome == Outcome.BOOT_FAILURE, result.render()
    assert "panicked during boot" in result.message
    folder = Path(result.log_dir)
    for name in ("console.log", "qemu-argv.txt", "qemu-stderr.log", "steps.jsonl"):
        assert (folder / name).is_file(), name
        assert (folder / "bundle" / name).is_file(), f"bundle/{name}"
    assert "Kernel panic" in (folder / "console.log").read_text()
    assert "rdinit=/nonexistent" in (folder / "qemu-argv.txt").read_text()
    steps = (folder / "steps.jsonl").read_text()
    assert '"step": "boot"' in steps and '"result": "error"' in steps
    for named in re.findall(r"console log: (\S+?)[;)]", result.message):
        assert Path(named).is_file(), f"the message names {named}, which is gone"


def test_a_silent_console_is_retried_once_then_reported(tmp_path: Path) -> None:
    kernel, initramfs = prepare("x86_64", log=quiet)
    # -S: QEMU starts with its CPUs stopped, so the console never says anything.
    options = VMOptions(arch="x86_64", accel="tcg", qemu_args=("-S",), first_output_timeout=2.0)
    vm = VM(kernel, initramfs, options, quiet)
    with pytest.raises(BootError) as exc:
        vm.start()
    vm.stop()
    # Before each kill, QEMU's own view: not started, both vCPUs at the x86 reset vector (the
    # second one halted, as an application processor waits for its start-up IPI).
    seen = "QEMU prelaunch; vCPU0 running at the reset vector, pc 0xfff0; "
    seen += "vCPU1 halted at the reset vector, pc 0xfff0"
    workdir = exc.value.workdir
    assert isinstance(workdir, Path)
    # and the host's: the child is QEMU (it did exec), its PID named.
    host = r"process \d+: qemu-system-x86_64, state [RS][^;]*"
    assert len(vm.boot_notes) == 1
    assert re.fullmatch(
        rf"boot retried: no console output in 2 s \({re.escape(seen)}; {host}; "
        rf"QEMU's view: {re.escape(str(workdir))}/stall-1\.txt\)",
        vm.boot_notes[0],
    ), vm.boot_notes[0]
    assert re.search(
        rf"no console output in 2 s, twice \({re.escape(seen)}; {host}; "
        rf"QEMU's view: {re.escape(str(workdir))}/stall-2\.txt;",
        str(exc.value),
    ), str(exc.value)
    assert (workdir / "console.log").exists()
    assert (workdir / "qemu-argv.txt").read_text().count("-S") == 1
    for n in (1, 2):
        text = (workdir / f"stall-{n}.txt").read_text()
        assert text.startswith(seen) and "EIP=0000fff0" in text
