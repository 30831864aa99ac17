"""User C programs for a guest: compiled statically with the lab's toolchain (syzbot's
``gcc repro.c -lpthread -static``, plus -O2 -Wall and the lab's include folder), cached by the
preprocessed source, the arch, the flags and the compiler's version."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from lab.cache import Entry, hash_strings
from lab.errors import LabError
from lab.log import Log, stderr_log
from lab.paths import DATA
from lab.profiles import get_profile

INCLUDE = DATA / "include"  # remaplab.h: on the include path of every program
FLAGS = ("-static", "-O2", "-Wall")
LIBS = ("-lpthread",)
COMPILE_TIMEOUT_S = 300
MESSAGES_MAX = 4000  # characters of compiler output quoted in an error
KEY_VERSION = "1"


def compiler(arch: str) -> str:
    return f"{get_profile(arch).cross_compile}gcc"


def compiler_version(cc: str) -> str:
    """The compiler's first --version line (part of the cache key); a LabError if it is missing."""
    try:
        proc = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{cc} not found: run `make deps`") from exc
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not lines:
        raise LabError(f"{cc} --version failed: run `make deps`")
    return lines[0]


def _gcc(argv: list[str], what: str) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=COMPILE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: no result within {COMPILE_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        messages = (proc.stderr + proc.stdout).decode(errors="replace").strip()
        if len(messages) > MESSAGES_MAX:
            messages = "...\n" + messages[-MESSAGES_MAX:]
        raise LabError(f"{what} failed:\n{messages}")
    return proc


def compile_argv(arch: str, source: Path, out: Path, cflags: Sequence[str] = ()) -> list[str]:
    return [
        compiler(arch),
        *FLAGS,
        f"-I{INCLUDE}",
        *cflags,
        "-o",
        str(out),
        str(source),
        *LIBS,
    ]


def compile_static(
    arch: str, source: Path, cflags: Sequence[str] = (), log: Log = stderr_log
) -> Path:
    """The static binary of source for arch (a path in the cache: copy it, do not modify it).
    A compile error is a LabError quoting the compiler's messages."""
    cc = compiler(arch)
    source = source.resolve()
    if not source.is_file():
        raise LabError(f"{source}: no such C source file")
    version = compiler_version(cc)
    what = f"compiling {source.name} for {arch} ({cc})"
    # The preprocessed text covers the source and every header it includes.
    pre = _gcc([cc, "-E", "-P", f"-I{INCLUDE}", *cflags, str(source)], what).stdout
    key = f"{arch}-" + hash_strings([KEY_VERSION, pre, version, *cflags])

    def build(tmp: Path) -> list[str]:
        log(f"compiling {source.name} for {arch}: {' '.join((cc, *FLAGS, *cflags, *LIBS))}")
        _gcc(compile_argv(arch, source, tmp / "program", cflags), what)
        return ["program"]

    return Entry("programs", key).ensure(build, log) / "program"
