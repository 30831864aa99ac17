"""Snapshot restore on real guests, both arches: a restored guest answers over SSH on a fresh
port, has its clock set and its module tree mounted, loads multimap, and the physical witness
reads its RAM; `--fresh` runs every scenario on a restored VM; the VM replacing a crashed one
is restored."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import snapshot
from lab.scenario.load import Loaded, load_file, load_text
from lab.scenario.runner import Outcome, VMPool, run_scenario
from lab.session import prepare
from lab.vm import VM, VMOptions

REPO = Path(__file__).resolve().parents[2]


def restored(log_dir: Path) -> bool:
    """Whether the scenario's VM came from a snapshot (its step log has a restore that ended
    well)."""
    events = [json.loads(line) for line in (log_dir / "steps.jsonl").read_text().splitlines()]
    return any(e["step"] == "restore" and e.get("result") == "ok" for e in events)


@pytest.fixture(scope="module")
def fresh_pool() -> Iterator[VMPool]:
    p = VMPool(fresh=True)
    yield p
    p.close()


def test_restored_guest_answers_with_modules_and_clock(arch: str) -> None:
    kernel, initramfs = prepare(arch)
    first = VM(kernel, initramfs, VMOptions(arch=arch))
    try:
        snapshot.start(first)  # restores, or boots and saves the snapshot
    finally:
        first.stop()
    vm = VM(kernel, initramfs, VMOptions(arch=arch))
    try:
        snapshot.start(vm, save_missing=False)
        assert "-incoming" in vm.argv, vm.boot_notes
        assert not vm.boot_notes
        # QEMU got no kernel to load; what a bundle reruns still boots one, with its cmdline
        assert "-kernel" not in vm.argv and "-incoming" not in vm.boot_argv
        assert "-kernel" in vm.boot_argv and "-append" in vm.boot_argv
        out = vm.run(
            "uname -m; date +%s; ls /lib/modules/$(uname -r)/kernel | grep -c .; "
            "modprobe multimap && grep -c '^multimap ' /proc/modules",
            timeout=60,
        )
        assert out.ok, out.stderr
        machine, clock, entries, loaded = out.stdout.split()
        assert machine == {"x86_64": "x86_64", "arm64": "aarch64"}[arch]
        assert abs(int(clock) - time.time()) < 60  # set from the host after the restore
        assert int(entries) > 0  # the module tree is mounted again
        assert loaded == "1"
    finally:
        vm.stop()


def test_fresh_runs_a_physical_scenario_on_a_restored_vm(
    arch: str, fresh_pool: VMPool, tmp_path: Path
) -> None:
    loaded = load_file(REPO / "scenarios" / "combo-pages-remap.yaml")
    for n in range(2):  # the first may boot and save; both run on a restored VM
        result = run_scenario(loaded, arch, fresh_pool, tmp_path / str(n))
        assert result.outcome == Outcome.PASSED, result.render()
        check = next(s for s in result.steps if s.kind == "check")
        assert check.evidence["physical_pfns"] == check.evidence["module_pfns"]
    assert restored(tmp_path / "1" / f"combo-pages-remap-{arch}")


def inline(name: str, command: str) -> Loaded:
    text = f"name: {name}\ndescription: d\nsteps:\n  - run: {{command: '{command}'}}\n"
    return Loaded(load_text(text, Path(f"{name}.yaml")), Path(f"{name}.yaml"), text)


def test_vm_replacing_a_crashed_one_is_restored(arch: str, tmp_path: Path) -> None:
    pool = VMPool()
    try:
        crash = run_scenario(
            inline("panic", "echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger"),
            arch,
            pool,
            tmp_path,
        )
        assert crash.outcome == Outcome.CRASH, crash.render()
        after = run_scenario(inline("after", "echo ok"), arch, pool, tmp_path)
        assert after.outcome == Outcome.PASSED, after.render()
        assert restored(tmp_path / f"after-{arch}"), after.notes
    finally:
        pool.close()
