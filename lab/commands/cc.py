"""``remaplab cc``: a C program compiled statically for a guest arch, cached."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from lab.errors import LabError


def cmd_cc(args: argparse.Namespace, cflags: list[str]) -> int:
    from lab.cc import compile_static
    from lab.profiles import get_profile

    get_profile(args.arch)
    source: Path = args.source
    out: Path = args.output or Path(source.name.removesuffix(".c") or "a.out")
    if out.resolve() == source.resolve():
        raise LabError(f"-o {out}: would overwrite the source file")
    binary = compile_static(args.arch, source, cflags)
    try:
        out.unlink(missing_ok=True)  # a running or read-only old binary is replaced, not written
        shutil.copy2(binary, out)
    except OSError as exc:
        raise LabError(f"-o {out}: cannot write: {exc.strerror}") from None
    return 0


def register(sub: Any) -> None:
    cc = sub.add_parser(
        "cc",
        help="compile a C program statically for a guest arch (cached)",
        usage="remaplab cc --arch ARCH [-o OUT] FILE.c [-- CFLAGS...]",
        description="gcc -static -O2 -Wall -I<lab include> CFLAGS FILE.c -lpthread, with the "
        "arch's compiler (aarch64-linux-gnu-gcc for arm64); cached by content, arch, flags and "
        "compiler version.",
    )
    cc.add_argument("--arch", required=True, help="guest architecture")
    cc.add_argument("-o", "--output", type=Path, help="output file (default: FILE without .c)")
    cc.add_argument("source", type=Path, metavar="FILE.c")
    cc.set_defaults(func=cmd_cc)
