"""The lab as a non-root user (Debian 12, packages installed): `remaplab run SCENARIO` and
`remaplab boot -- true` on x86_64, with the user's own HOME and REMAPLAB_CACHE.

The user cannot read root's cache (~root is 0700, the lab's keys are 0600), so its cache is
seeded with a copy of root's content-keyed entries that hold no secret (Debian's kernel and
packages, the guest userland, tools and modules for x86_64), owned by the user; its keys and
initramfs are its own, built in the run.  Both costs are printed (`-s`).  /dev/kvm is root's
here (0600): the user's guest falls back to TCG and says why.  A stale RAM file left in
/dev/shm by a dead root process (sticky folder: not the user's to remove) must not stop its
boot.  Needs root to create the user: skipped otherwise (CI runs as root)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.hosttools import which
from lab.paths import REPO, cache_dir

USER = "remaplab-nonroot"
SCENARIO = "combo-pages-remap"  # maps, writes tokens, checks the guest-RAM witness (/dev/shm)
# Kinds of cache entry copied from root's (no keys: the user makes its own).
SEED = {"apt-queries": "*", "debs": "*_a[mn][ld]*.deb", "kernels": "debian-*-amd64-*",
        "userland": "*", "tools": "x86_64*", "modules": "x86_64*", "programs": "*"}  # fmt: skip
RUN_TIMEOUT_S = 900.0
VERSIONED = f"python{sys.version_info.major}.{sys.version_info.minor}"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="creates a non-root user: needs root"),
]


@dataclass
class Account:
    name: str
    uid: int
    home: Path
    cache: Path
    python: str = sys.executable
    pythonpath: str = ""

    @property
    def remaplab(self) -> tuple[str, ...]:
        return (self.python, "-m", "lab.cli")

    def run(self, *argv: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """argv as the user, in its home, with a plain login-like environment (no sbin on PATH:
        the lab must find depmod and friends itself)."""
        runuser = which("runuser")
        assert runuser, "runuser (util-linux) not found"
        env = [f"HOME={self.home}", "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
               f"REMAPLAB_CACHE={self.cache}"]  # fmt: skip
        if self.pythonpath:
            env.append(f"PYTHONPATH={self.pythonpath}")
        cmd = [runuser, "-u", self.name, "--", "env", "-i", *env, *argv]
        return subprocess.run(
            cmd, cwd=self.home, capture_output=True, text=True, timeout=timeout, check=False
        )


def _user() -> tuple[pwd.struct_passwd, bool]:
    try:
        return pwd.getpwnam(USER), False
    except KeyError:
        useradd = which("useradd")
        assert useradd, "useradd (passwd) not found"
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/bin/sh", USER],
                       check=True, timeout=60)  # fmt: skip
        return pwd.getpwnam(USER), True


def seed_cache(src: Path, dst: Path) -> None:
    for kind, pattern in SEED.items():
        for entry in sorted((src / kind).glob(pattern)) if (src / kind).is_dir() else []:
            if entry.name.startswith(".") or ".tmp" in entry.name:
                continue  # a build in progress
            target = dst / kind / entry.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.is_dir():
                shutil.copytree(entry, target, symlinks=True)
            else:
                shutil.copy2(entry, target)


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    entry, created = _user()
    home = Path(tempfile.mkdtemp(prefix="remaplab-nonroot-", dir="/tmp"))
    cache = home / "cache"
    start = time.monotonic()
    seed_cache(cache_dir(), cache)
    subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", str(home)], check=True)
    os.chmod(home, 0o755)
    print(f"\nnon-root cache seeded from root's in {time.monotonic() - start:.1f} s")
    account = Account(USER, entry.pw_uid, home, cache)
    _choose_python(account)
    try:
        yield account
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if created:
            subprocess.run([which("userdel") or "userdel", USER], check=False, timeout=60)


def _choose_python(account: Account) -> None:
    """The venv's interpreter when the user can run it; else (a venv made from a Python under
    /root, e.g. pyenv's: ~root is 0700) the system's same-version Python with the venv's
    site-packages (same ABI) and the checkout on PYTHONPATH."""
    if account.run(sys.executable, "-c", "import lab.cli", timeout=60).returncode == 0:
        return
    system = Path("/usr/bin") / VERSIONED
    if not system.is_file():
        pytest.skip(f"the user cannot run {sys.executable} and there is no {system}")
    site = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    account.python, account.pythonpath = str(system), f"{site}:{REPO}"
    probe = account.run(account.python, "-c", "import lab.cli", timeout=60)
    assert probe.returncode == 0, probe.stderr


@pytest.fixture
def stale_root_ram_file() -> Iterator[Path]:
    """A RAM file of a root lab process that died: root's, in the sticky /dev/shm."""
    pid = 4_194_000
    while Path(f"/proc/{pid}").exists():
        pid += 1
    path = Path("/dev/shm") / f"remaplab-{pid}-vm-x86_64-stale.ram"
    path.write_bytes(b"")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_run_a_scenario_as_a_non_root_user(account: Account, stale_root_ram_file: Path) -> None:
    out = account.home / "results"
    start = time.monotonic()
    res = account.run(*account.remaplab, "run", SCENARIO, "--arch", "x86_64", "--out", str(out))
    print(
        f"non-root remaplab run {SCENARIO}: {time.monotonic() - start:.1f} s (own keys, initramfs)"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    report = (out / "report.json").read_text()
    assert '"passed": 1' in report, report
    assert (out / f"{SCENARIO}-x86_64" / "result.json").stat().st_uid == account.uid
    # Not the user's to remove, and the boot went on (a root lab process running beside this
    # test, e.g. under -n, may sweep it first; tests/unit/test_sweep_stale.py pins the rule).
    assert not stale_root_ram_file.exists() or stale_root_ram_file.stat().st_uid == 0
    keys = account.cache / "keys" / "id_ed25519"
    assert keys.stat().st_uid == account.uid and keys.stat().st_mode & 0o777 == 0o600


def test_boot_true_as_a_non_root_user(account: Account) -> None:
    start = time.monotonic()
    res = account.run(*account.remaplab, "boot", "--arch", "x86_64", "--", "true", timeout=300)
    print(f"non-root remaplab boot -- true: {time.monotonic() - start:.1f} s")
    assert res.returncode == 0, res.stdout + res.stderr
    if not kvm_usable_by(account):
        assert "tcg" in res.stderr.lower(), res.stderr  # and it says why


def kvm_usable_by(account: Account) -> bool:
    try:
        st = os.stat("/dev/kvm")
    except FileNotFoundError:
        return False
    entry = pwd.getpwnam(account.name)
    in_group = st.st_gid == entry.pw_gid or account.name in grp.getgrgid(st.st_gid).gr_mem
    return bool(st.st_mode & 0o006 == 0o006 or (in_group and st.st_mode & 0o060 == 0o060))


def test_a_cache_folder_root_left_behind_is_one_line(account: Account) -> None:
    """A run as root that made the user's cache (or part of it) leaves folders the user cannot
    write: one line naming the folder and the fix, exit 125, no traceback, nothing booted."""
    run = account.cache / "run"
    saved = run.stat() if run.exists() else None
    run.mkdir(exist_ok=True)
    os.chown(run, 0, 0)
    os.chmod(run, 0o755)
    try:
        res = account.run(*account.remaplab, "boot", "--arch", "x86_64", "--", "true", timeout=120)
    finally:
        gid = pwd.getpwnam(account.name).pw_gid
        os.chown(run, saved.st_uid if saved else account.uid, saved.st_gid if saved else gid)
    assert res.returncode == 125, res.stdout + res.stderr
    assert f"{run} is not writable by this user" in res.stderr and "chown" in res.stderr
    assert "Traceback" not in res.stderr
    kernels = account.cache / "kernels"
    os.chown(kernels, 0, 0)
    try:  # a kind's folder: the cached kernel is readable, nothing new can be built there
        res = account.run(*account.remaplab, "build", "--arch", "x86_64", timeout=300)
    finally:
        os.chown(kernels, account.uid, pwd.getpwnam(account.name).pw_gid)
    assert "Traceback" not in res.stderr, res.stderr
