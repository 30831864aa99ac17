"""The ``lab`` provider: a kernel the lab builds itself, with the mm debugging it needs.

Source: Debian's linux-source-6.1 (default) or a kernel tree the user points at.  Config:
tinyconfig, then the lab fragment (``lab/data/kernel/lab.config``), the arch's fragment and the
profile's (``kasan``) merged with the kernel's own merge_config.sh, then checked: an option the
source cannot give is an error, not a silent surprise.  Built out of tree (``O=``) into the cache,
keyed by (source, fragments, arch, compiler); the result is handed on as a bring-your-own kernel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.cache import Entry, hash_strings
from lab.errors import LabError
from lab.kernel.base import Kernel
from lab.kernel.byo import path_kernel
from lab.kernel.userconfig import not_surviving, report_dropped, user_fragments
from lab.linux_source import linux_source
from lab.log import Log, stderr_log
from lab.paths import DATA, cache_dir
from lab.profiles import Profile

BUILDER_VERSION = "1"
PROFILES = ("lab", "kasan")
BUILD_TIMEOUT_S = 3600.0
FRAGMENTS = DATA / "kernel"


@dataclass(frozen=True)
class Source:
    tree: Path
    identity: (
        str  # e.g. "linux-source-6.1 6.1.192-2" or "/src/linux @ v6.12-rc1-3-gabc (dirty ...)"
    )
    key: str


def fragments(profile: Profile, kind: str) -> list[Path]:
    if kind not in PROFILES:
        raise LabError(f"unknown lab kernel profile {kind!r}: choose one of {', '.join(PROFILES)}")
    files = [FRAGMENTS / "lab.config", FRAGMENTS / f"{profile.arch}.config"]
    if kind != "lab":
        files.append(FRAGMENTS / f"{kind}.config")
    return files


def wanted_options(files: list[Path]) -> dict[str, str]:
    """CONFIG_X -> value ('n' for unset) as the fragments ask, later files winning."""
    wanted: dict[str, str] = {}
    for path in files:
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line.startswith("CONFIG_") and "=" in line:
                name, value = line.split("=", 1)
                wanted[name] = value
            elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
                wanted[line[2:].split()[0]] = "n"
    return wanted


def config_mismatches(config_text: str, wanted: dict[str, str]) -> list[str]:
    """Options of the fragments that the final .config does not have as asked."""
    have: dict[str, str] = {}
    for line in config_text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            name, value = line.split("=", 1)
            have[name] = value
    bad = []
    for name, value in wanted.items():
        got = have.get(name, "n")
        if got != value:
            bad.append(f"{name}={value} (got {got if got != 'n' else 'unset'})")
    return bad


def debian_source(log: Log = stderr_log) -> Source:
    src = linux_source()
    package, version = src.package, src.version

    def build(tmp: Path) -> list[str]:
        log(f"extracting {package} {version} (once, about 1.3 GB)")
        src.extract(tmp)
        return [f"{package}/Makefile"]

    root = Entry("kernel-src", f"{package}-{version}").ensure(build, log)
    return Source(root / package, f"{package} {version}", f"{package}-{version}")


def tree_source(tree: Path) -> Source:
    tree = tree.expanduser().resolve()
    if not (tree / "Makefile").is_file() or not (tree / "Kconfig").is_file():
        raise LabError(f"--source {tree}: not a kernel tree (no Makefile and Kconfig)")
    if (tree / ".config").exists() or (tree / "include/config").exists():
        raise LabError(
            f"--source {tree}: the tree has an in-tree build (.config); the lab builds out of "
            f"tree (O=), which the kernel refuses then: run 'make mrproper' in it first"
        )
    git = subprocess.run(
        ["git", "-C", str(tree), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
    )
    if git.returncode == 0:
        described = git.stdout.strip()
        diff = subprocess.run(
            ["git", "-C", str(tree), "diff", "HEAD"], capture_output=True, check=False
        ).stdout
        key_parts: list[str | bytes] = [str(tree), described, diff]
    else:
        # Not git: every file's path, size and mtime stand for its contents.
        described = "not a git tree"
        key_parts = [str(tree)]
        for dirpath, dirs, files in os.walk(tree):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for name in sorted(files):
                st = Path(dirpath, name).stat()
                key_parts.append(f"{dirpath}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return Source(tree, f"{tree} @ {described}", "tree-" + hash_strings(key_parts))


def _compiler(profile: Profile) -> str:
    gcc = f"{profile.cross_compile}gcc"
    try:
        out = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise LabError(f"{gcc} not usable ({exc}); run 'make deps'") from None
    return out.stdout.splitlines()[0]


def _make(
    profile: Profile, src: Path, out: Path, *targets: str, ccache: str | None = None
) -> list[str]:
    argv = ["make", "-C", str(src), f"O={out}", f"ARCH={profile.kernel_arch}"]
    if profile.cross_compile:
        argv.append(f"CROSS_COMPILE={profile.cross_compile}")
    if ccache:
        argv.append(f"CC={ccache} {profile.cross_compile}gcc")
    return [*argv, *targets]


def _run(argv: list[str], logfile: Path, what: str, timeout: float) -> None:
    """Run one build command, its output appended to logfile; the whole process group dies
    with us (Ctrl-C, SIGTERM) or at the timeout, so no compiler outlives the lab."""
    with logfile.open("a") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(
                f"{what} did not finish within {timeout:.0f} s (log {logfile})"
            ) from None
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if status != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-15:]
        raise LabError(f"{what} failed (log {logfile}):\n" + "\n".join(tail))


def configure(
    profile: Profile,
    src: Source,
    out: Path,
    files: list[Path],
    logfile: Path,
    user_config: Path | None = None,
    ccache: str | None = None,
) -> list[str]:
    """Write out/.config: tinyconfig + the fragments, or the user's config + the fragments;
    olddefconfig.  A fragment option the source cannot give is a LabError; returns the user's
    options that did not survive (userconfig.not_surviving)."""
    if user_config is None:
        _run(_make(profile, src.tree, out, "tinyconfig", ccache=ccache), logfile, "tinyconfig", 600)
    else:
        shutil.copy(user_config, out / ".config")
    merge = [
        str(src.tree / "scripts/kconfig/merge_config.sh"),
        "-m",
        "-O",
        str(out),
        str(out / ".config"),
        *map(str, files),
    ]
    _run(merge, logfile, "merge_config.sh", 600)
    make_old = _make(profile, src.tree, out, "olddefconfig", ccache=ccache)
    _run(make_old, logfile, "make olddefconfig", 600)
    final = (out / ".config").read_text()
    bad = config_mismatches(final, wanted_options(files))
    if bad:
        raise LabError(f"{src.identity} cannot give the lab config: " + ", ".join(bad[:12]))
    if user_config is None:
        return []
    return not_surviving(user_config.read_text(), final, wanted_options(files))


def compile_kernel(
    profile: Profile,
    tree: Path,
    out: Path,
    jobs: int,
    logfile: Path,
    what: str,
    ccache: str | None = None,
) -> Path:
    """make all in out (incremental when out holds an earlier build); the image's path."""
    argv = _make(profile, tree, out, f"-j{jobs}", "all", ccache=ccache)
    _run(argv, logfile, what, BUILD_TIMEOUT_S)
    image = image_path(profile, out)
    if not image.exists():
        raise LabError(f"the kernel build made no {image.relative_to(out)} (log {logfile})")
    return image


def image_path(profile: Profile, build: Path) -> Path:
    """What the build hands on as its image: bzImage on x86 (path_kernel boots the tree's
    vmlinux through PVH instead, unless the kernel has KASAN), Image on arm64."""
    if profile.kernel_arch == "x86":
        return build / "arch/x86/boot/bzImage"
    return build / "arch" / profile.kernel_arch / "boot" / "Image"


def lab_kernel(
    profile: Profile,
    kind: str = "lab",
    source: Path | None = None,
    jobs: int | None = None,
    log: Log = stderr_log,
    user_config: Path | None = None,
) -> Kernel:
    """Build (once) and return the lab kernel for profile.arch: the lab's config (profile
    kind), or with user_config the user's .config plus what the lab needs to boot (the options
    of it that did not survive are logged, from the cache too)."""
    files = fragments(profile, kind) if user_config is None else user_fragments(profile)
    what = f"{kind} profile" if user_config is None else f"config {user_config.name}"
    user_bytes = [user_config.read_bytes()] if user_config is not None else []
    src = tree_source(source) if source is not None else debian_source(log)
    compiler = _compiler(profile)
    key = f"{profile.arch}-{kind if user_config is None else 'user'}-" + hash_strings(
        [BUILDER_VERSION, src.key, compiler, *(f.read_bytes() for f in files), *user_bytes]
    )
    jobs = jobs or os.cpu_count() or 1

    def build(tmp: Path) -> list[str]:
        out = tmp / "build"
        out.mkdir()
        logfile = cache_dir() / "kernel-build" / f".{key}.log"  # kept when the build fails
        logfile.write_text("")
        start = time.monotonic()
        log(f"building the {what} kernel for {profile.arch} from {src.identity} ({jobs} jobs)")
        dropped = configure(profile, src, out, files, logfile, user_config)
        (tmp / "dropped.txt").write_text("".join(f"{line}\n" for line in dropped))
        if user_config is not None:  # said now, before the long build
            report_dropped(dropped, user_config, log)
            reported.append(True)
        image = compile_kernel(profile, src.tree, out, jobs, logfile, f"building the {what} kernel")
        (tmp / "identity").write_text(
            f"lab kernel ({what}) from {src.identity}; {compiler}; "
            f"built in {time.monotonic() - start:.0f} s\n"
        )
        for junk in out.rglob("*.o"):  # objects are not needed for modules; keeps the cache lean
            junk.unlink()
        shutil.copy(logfile, tmp / "build.log")
        return ["identity", "dropped.txt", f"build/{image.relative_to(out)}", "build/.config"]

    reported: list[bool] = []
    root = Entry("kernel-build", key).ensure(build, log)
    dropped_file = root / "dropped.txt"
    if user_config is not None and not reported and dropped_file.exists():
        report_dropped(dropped_file.read_text().splitlines(), user_config, log)
    kernel = path_kernel(profile, image_path(profile, root / "build"), root / "build", log)
    identity = (root / "identity").read_text().split(";")[0].strip()
    return dataclasses.replace(kernel, identity=identity, key=f"lab-{key}")
