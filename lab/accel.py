"""Accelerator choice: KVM only where a bounded boot proves it works, else TCG; always say which.

On the lab's own machines /dev/kvm exists but cannot run a stock kernel (see FACTS.md), so the
verdict of a KVM attempt is cached per (host kernel, QEMU, CPU, guest kernel) and later runs go
straight to TCG without paying for the probe again."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.cache import hash_strings
from lab.errors import LabError
from lab.paths import cache_dir
from lab.profiles import Profile, host_arch

ACCELS = ("auto", "kvm", "tcg")
KVM_PROBE_TIMEOUT_S = 10.0
# v3: a failed probe's QEMU stderr is kept beside its verdict too (v2 kept its console log, and
# named a stderr path in the VM's folder, which went with the VM; v1 named that folder only)
VERDICT = "kvm-v3-"


@dataclass(frozen=True)
class AccelChoice:
    accel: str  # what to try first: "kvm" or "tcg"
    reason: str
    probe_key: str | None = None  # set when the KVM attempt is a probe whose verdict is cached


def kvm_obstacle(profile: Profile, dev: Path = Path("/dev/kvm")) -> str | None:
    """Why KVM cannot be used for this guest on this host, or None if it might work."""
    if profile.arch != host_arch():
        return f"guest arch {profile.arch} differs from host arch {host_arch()}"
    if not dev.exists():
        return f"{dev} does not exist"
    if not os.access(dev, os.R_OK | os.W_OK):
        return f"{dev} is not readable and writable by this user"
    return None


def _qemu_version(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    keep = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(keep)))


def probe_key(profile: Profile, guest_key: str) -> str:
    return hash_strings(
        [platform.release(), _qemu_version(profile.qemu), _cpu_signature(), guest_key]
    )


def _verdict_path(key: str) -> Path:
    return cache_dir() / "probes" / f"{VERDICT}{key}.json"


def cached_verdict(key: str) -> tuple[bool, str] | None:
    try:
        data = json.loads(_verdict_path(key).read_text())
        return bool(data["ok"]), str(data["reason"])
    except (OSError, ValueError, KeyError):
        return None


def cached_verdicts() -> list[tuple[bool, str]]:
    """Every KVM probe verdict this machine's cache holds (one per guest kernel, QEMU, host
    kernel and CPU), the newest first: older ones may be for a QEMU or kernel long gone."""
    found = sorted(
        (cache_dir() / "probes").glob(f"{VERDICT}*.json"),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    seen = [cached_verdict(p.name.removeprefix(VERDICT).removesuffix(".json")) for p in found]
    return [v for v in seen if v is not None]


def record_verdict(key: str, ok: bool, reason: str, *evidence: Path) -> str:
    """Store the probe's verdict; a failed probe's evidence (console log, QEMU's stderr) is kept
    beside it as kvm-v3-KEY.NAME (the VM's own folder goes with the VM), and the reason,
    returned, names those copies."""
    path = _verdict_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    for found in evidence:
        if found.is_file():
            kept = path.with_suffix(f".{found.name}")
            shutil.copyfile(found, kept)
            reason = reason.replace(str(found), str(kept))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"ok": ok, "reason": reason}))
    os.replace(tmp, path)
    return reason


def choose(requested: str, profile: Profile, guest_key: str) -> AccelChoice:
    if requested not in ACCELS:
        raise LabError(f"unknown accelerator {requested!r}: choose one of {', '.join(ACCELS)}")
    if requested == "tcg":
        return AccelChoice("tcg", "requested")
    obstacle = kvm_obstacle(profile)
    if requested == "kvm":
        if obstacle:
            raise LabError(f"--accel kvm: {obstacle}")
        return AccelChoice("kvm", "requested")
    if obstacle:
        return AccelChoice("tcg", f"no KVM: {obstacle}")
    key = probe_key(profile, guest_key)
    verdict = cached_verdict(key)
    if verdict is not None:
        ok, reason = verdict
        if ok:
            return AccelChoice("kvm", "KVM probe passed before")
        # Said at every boot: the headline; the whole reason and the probe's logs are beside it.
        headline = reason.split("; ")[0].split(" (console log")[0]
        return AccelChoice(
            "tcg", f"KVM probe failed before: {headline} (why: {_verdict_path(key)})"
        )
    return AccelChoice("kvm", "probing KVM with a bounded boot", probe_key=key)
