import json
import os
import re
import time
from pathlib import Path

import pytest

from lab import accel
from lab.errors import LabError
from lab.profiles import get_profile, host_arch


def test_tcg_when_asked() -> None:
    assert accel.choose("tcg", get_profile("arm64"), "k").accel == "tcg"


def test_unknown_accel() -> None:
    with pytest.raises(LabError, match="unknown accelerator 'hvf'"):
        accel.choose("hvf", get_profile("x86_64"), "k")


def test_foreign_arch_never_kvm(tmp_cache: Path) -> None:
    other = "arm64" if host_arch() == "x86_64" else "x86_64"
    choice = accel.choose("auto", get_profile(other), "k")
    assert choice.accel == "tcg" and "differs from host arch" in choice.reason
    with pytest.raises(LabError, match="--accel kvm: guest arch"):
        accel.choose("kvm", get_profile(other), "k")


def test_obstacles(tmp_path: Path) -> None:
    prof = get_profile(host_arch())
    assert "does not exist" in str(accel.kvm_obstacle(prof, tmp_path / "nokvm"))
    dev = tmp_path / "kvm"
    dev.write_text("")
    dev.chmod(0o000)
    import os

    if os.geteuid() != 0:  # root can open anything
        assert "not readable and writable" in str(accel.kvm_obstacle(prof, dev))


def test_probe_verdict_is_cached(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prof = get_profile(host_arch())
    monkeypatch.setattr(accel, "kvm_obstacle", lambda _p: None)
    first = accel.choose("auto", prof, "guest-1")
    assert first.accel == "kvm" and first.probe_key is not None
    accel.record_verdict(first.probe_key, False, "emulation failure")
    again = accel.choose("auto", prof, "guest-1")
    assert again.accel == "tcg" and "emulation failure" in again.reason
    assert again.probe_key is None
    # Another guest kernel is probed afresh.
    assert accel.choose("auto", prof, "guest-2").probe_key is not None


def test_a_failed_probes_console_log_is_kept_with_its_verdict(
    tmp_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe VM's folder goes with the VM: the reason every later boot prints must name a
    console log that exists."""
    prof = get_profile(host_arch())
    monkeypatch.setattr(accel, "kvm_obstacle", lambda _p: None)
    key = accel.choose("auto", prof, "guest-3").probe_key
    assert key is not None
    console = tmp_path / "vm-x86_64-abc" / "console.log"
    console.parent.mkdir()
    console.write_text("SeaBIOS (version 1.16.2-debian-1.16.2-1)\n")
    stderr = console.parent / "qemu-stderr.log"
    stderr.write_text("kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.\n")
    failure = (
        f"QEMU exited before the x86_64 guest was ready (console log: {console}; "
        f"QEMU stderr: {stderr})"
    )
    said = accel.record_verdict(key, False, failure, console, stderr)
    console.unlink()
    stderr.unlink()
    console.parent.rmdir()
    reason = accel.choose("auto", prof, "guest-3").reason
    (verdict,) = re.findall(r"\(why: (\S+)\)$", reason)  # every boot: the headline, the file
    assert reason == (
        f"KVM probe failed before: QEMU exited before the x86_64 guest was ready (why: {verdict})"
    )
    assert json.loads(Path(verdict).read_text())["reason"] == said
    (kept,) = re.findall(r"console log: (\S+);", said)
    assert Path(kept).read_text().startswith("SeaBIOS") and str(tmp_cache) in kept
    (kept_err,) = re.findall(r"QEMU stderr: (\S+)\)", said)
    assert "Assertion" in Path(kept_err).read_text() and str(tmp_cache) in kept_err


def test_doctor_sees_every_cached_verdict(tmp_cache: Path) -> None:
    """What `remaplab doctor` reports: the verdicts as stored (kvm-v3-KEY.json), kept logs aside."""
    assert accel.cached_verdicts() == []
    accel.record_verdict("k1", True, "booted")
    console = tmp_cache / "console.log"
    console.write_text("no output\n")
    accel.record_verdict("k2", False, f"emulation failure (console log: {console})", console)
    failed = (False, f"emulation failure (console log: {tmp_cache}/probes/kvm-v3-k2.console.log)")
    future = time.time_ns() + 10**12
    os.utime(tmp_cache / "probes" / "kvm-v3-k1.json", ns=(future, future))  # the newest
    assert accel.cached_verdicts() == [(True, "booted"), failed]
    accel.record_verdict("k1", False, "after a QEMU upgrade")
    os.utime(tmp_cache / "probes" / "kvm-v3-k2.json", ns=(10**9, 10**9))
    assert accel.cached_verdicts()[0] == (False, "after a QEMU upgrade")
