"""User C programs for a guest: compiled statically with the lab's toolchain (syzbot's
``gcc repro.c -lpthread -static``, plus -O2 -Wall and the lab's include folder), cached by the
preprocessed source, the arch, the flags and the compiler's version."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from lab.cache import Entry, hash_strings
from lab.errors import LabError
from lab.log import Log, stderr_log
from lab.paths import DATA, MODULE_SRC
from lab.profiles import get_profile

INCLUDE = DATA / "include"  # remaplab.h: on the include path of every program
UAPI = MODULE_SRC / "uapi"  # multimap.h, multimap's ioctls: there too
INCLUDES = tuple(f"-I{d}" for d in (INCLUDE, UAPI))
FLAGS = ("-static", "-O2", "-Wall")
LIBS = ("-lpthread",)
COMPILE_TIMEOUT_S = 300
MESSAGES_MAX = 4000  # characters of compiler output quoted in an error
KEY_VERSION = "1"


def compiler(arch: str) -> str:
    return f"{get_profile(arch).cross_compile}gcc"


@cache
def compiler_version(cc: str) -> str:
    """The compiler's first --version line (part of the cache key); a LabError if it is missing.
    Asked once a process per tool: every prepare() keys several builds by it."""
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


def _gcc(argv: list[str], what: str, output: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run the compiler; output: its stdout is the result (-E, -M), never quoted as a message."""
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=COMPILE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: no result within {COMPILE_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        said = proc.stderr if output else proc.stderr + proc.stdout
        raise LabError(f"{what} failed:\n{_bounded(said.decode(errors='replace').strip())}")
    return proc


def _bounded(messages: str) -> str:
    """The compiler's messages, at most MESSAGES_MAX characters: the first errors (they explain
    the rest) and the last lines (the linker's, after every warning)."""
    if len(messages) <= MESSAGES_MAX:
        return messages
    half = MESSAGES_MAX // 2
    return f"{messages[:half]}\n...\n{messages[-half:]}"


# gcc -M output: words split on unescaped blanks; "\\X" is X, "$$" is $ (make's escapes).
_MAKE_WORD = re.compile(r"(?:\\.|[^\s\\])+")
_MAKE_ESCAPE = re.compile(r"\\(.)|\$\$")


def _absolute_include_dirs(cflags: Sequence[str]) -> list[str]:
    """cflags with relative -I/-iquote folders made absolute (gcc names a header by the
    folder it was found through; a relative one is not a place)."""
    out: list[str] = []
    flags = list(cflags)
    for i, flag in enumerate(flags):
        after = flags[i - 1] if i else ""
        if after in ("-I", "-iquote") and not os.path.isabs(flag):
            flag = os.path.abspath(flag)
        for opt in ("-I", "-iquote"):
            rest = flag[len(opt) :]
            if flag.startswith(opt) and rest and not os.path.isabs(rest):
                flag = opt + os.path.abspath(rest)
        out.append(flag)
    return out


def local_headers(arch: str, source: Path, cflags: Sequence[str] = ()) -> list[Path]:
    """The files source includes besides system headers and the lab's own (its "..." includes,
    found by the compiler: `gcc -MM`), as absolute paths the way gcc reached them (symlinks and
    ".." kept: a copy must sit where the include found it); what a copy needs beside it."""
    # Named absolute, so that gcc names its includes so; not normalised: "d/../x" through a
    # symlinked d is not "x" (the scenario's own relative paths are opened the same way).
    own = source.absolute()
    # -MG: a missing header is listed, not an error (the copy of a source that does not compile
    # still carries what it has); it is listed as written, so relative: left out below.
    argv = [compiler(arch), "-MM", "-MG", *INCLUDES, *_absolute_include_dirs(cflags), str(own)]
    text = _gcc(argv, f"listing the headers of {source.name}", output=True).stdout.decode()
    words = _MAKE_WORD.findall(text.replace("\\\n", " "))[1:]  # after "x.o:"
    found = {_MAKE_ESCAPE.sub(lambda m: m[1] or "$", w) for w in words}
    lab = (INCLUDE.resolve(), UAPI.resolve())
    mine: dict[Path, Path] = {}  # resolved -> as reached (one copy of each file)
    for word in sorted(found):
        path = Path(word)
        real = path.resolve()
        ours = path.is_absolute() and path.is_file() and real != own.resolve()
        if ours and not any(real.is_relative_to(d) for d in lab):
            mine.setdefault(real, path)
    return sorted(mine.values())


def copy_with_headers(
    arch: str, source: Path, dest: Path, name: str, cflags: Sequence[str] = ()
) -> Path:
    """Copy source to dest/BASE/NAME and its local headers to the same places relative to it,
    so that its relative includes resolve in the copy; BASE is one "_" folder per level a
    header lies above source's folder.  NAME is name, or source's own name when one of its
    headers takes that place.  Returns BASE/NAME."""
    headers = local_headers(arch, source, cflags)
    folder = os.path.dirname(os.path.abspath(source))
    rels = [Path(os.path.relpath(h, folder)) for h in headers]
    base = Path(*(["_"] * max((r.parts.count("..") for r in rels), default=0)))
    places = [Path(os.path.normpath(dest / base / r)) for r in rels]
    if dest / base / name in places:  # `#include "repro.c"` beside it: keep its own name
        name = source.name
    copies = [(source, dest / base / name), *zip(headers, places, strict=True)]
    for src, dst in copies:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    return base / name


def compile_argv(arch: str, source: Path, out: Path, cflags: Sequence[str] = ()) -> list[str]:
    return [
        compiler(arch),
        *FLAGS,
        *INCLUDES,
        *cflags,
        "-o",
        str(out),
        str(source),
        *LIBS,
    ]


def check_source(source: Path) -> None:
    """Refuse, with one line, what cannot be a C source: nothing there, a folder, a device or
    pipe, binary data (a compiled program: C sources hold no NUL byte)."""
    if source.is_dir():
        raise LabError(f"{source}: a folder, not a C source file")
    if not source.exists():
        raise LabError(f"{source}: no such C source file")
    if not source.is_file():
        raise LabError(f"{source}: not a regular file, not a C source file")
    try:
        with source.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise LabError(f"{source}: cannot be read ({exc.strerror})") from None
    if b"\0" in head:
        what = "an ELF file" if head.startswith(b"\x7fELF") else "binary data"
        raise LabError(f"{source}: {what}, not a C source file")


def compile_static(
    arch: str, source: Path, cflags: Sequence[str] = (), log: Log = stderr_log
) -> Path:
    """The static binary of source for arch (a path in the cache: copy it, do not modify it).
    A compile error is a LabError quoting the compiler's messages."""
    cc = compiler(arch)
    check_source(source)
    source = source.resolve()
    version = compiler_version(cc)
    what = f"compiling {source.name} for {arch} ({cc})"
    # The preprocessed text covers the source and every header it includes.
    pre = _gcc([cc, "-E", "-P", *INCLUDES, *cflags, str(source)], what, output=True).stdout
    key = f"{arch}-" + hash_strings([KEY_VERSION, pre, version, *cflags])

    def build(tmp: Path) -> list[str]:
        out = tmp / "program"
        argv = compile_argv(arch, source, out, cflags)
        cut = argv.index(str(out)) - 1  # the lab's -o (a user's -o in cflags comes before)
        shown = argv[:cut] + argv[cut + 2 :]  # not the cache's temporary path
        log(f"compiling {source.name} for {arch}: {shlex.join(shown)}")
        _gcc(argv, what)
        return ["program"]

    return Entry("programs", key).ensure(build, log) / "program"
