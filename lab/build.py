"""Builds of the lab's own code for a guest: the multimap module (Kbuild, W=1, native or cross)
and the static guest tools.  Both cached by content; a warning is a build failure."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.cache import Entry, hash_strings, hash_tree
from lab.cc import INCLUDE, compiler_version
from lab.errors import LabError
from lab.kernel import Kernel
from lab.log import Log, stderr_log
from lab.paths import MODULE_SRC, ROOTFS_SRC, is_module_folder
from lab.profiles import Profile, get_profile
from lab.rootfs import Extra

TOOLS_SRC = ROOTFS_SRC / "tools"
TOOLS = ("multimap-ctl", "pagemap-dump", "multimap-fuzz", "remaplab-map")
MULTICALL = "remaplab-tools"  # the binary the tools link to: rootfs/tools/remaplab-tools.c
TOOL_FLAGS = ("-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread")
TOOLS_RECIPE = "2"  # how build_tools puts them together: one multi-call binary
BUILD_TIMEOUT_S = 600
WARNING = re.compile(r"\bwarning\b|\berror\b", re.I)


@dataclass(frozen=True)
class ModuleBuild:
    ko: Path
    log: Path
    depends: tuple[str, ...]


def _run(argv: list[str], cwd: Path | None, what: str) -> str:
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: no result within {BUILD_TIMEOUT_S} s") from exc
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise LabError(f"{what} failed:\n{out.strip()[-3000:]}")
    return out


def kbuild_args(profile: Profile) -> list[str]:
    args = [f"ARCH={profile.kernel_arch}"]
    if profile.cross_compile:
        args.append(f"CROSS_COMPILE={profile.cross_compile}")
    return args


def _kbuild_key(
    kernel: Kernel, what: str, source_key: str, flags: tuple[str, ...], error: type[LabError]
) -> tuple[Profile, str]:
    """The arch's profile and the cache key of a module build against kernel."""
    if kernel.kdir is None:
        raise error(f"cannot build {what} for {kernel.identity}: no kernel build tree (--kdir)")
    profile = get_profile(kernel.arch)
    compiler = compiler_version(f"{profile.cross_compile}gcc")
    return profile, f"{kernel.arch}-" + hash_strings([kernel.key, source_key, compiler, *flags])


def _make_modules(
    kernel: Kernel, profile: Profile, work: Path, flags: tuple[str, ...], name: str
) -> str:
    """Kbuild's `make modules` of the folder work (a copy of module `name`) against kernel's
    build tree (cross for arm64); its output."""
    assert kernel.kdir is not None
    argv = ["make", "-C", str(kernel.kdir), f"M={work}", *flags, *kbuild_args(profile), "modules"]
    return _run(argv, None, f"module build of {name} for {kernel.arch}")


MULTIMAP_FLAGS = ("W=1",)


def build_module(kernel: Kernel, log: Log = stderr_log) -> ModuleBuild:
    profile, key = _kbuild_key(kernel, "multimap", hash_tree(MODULE_SRC), MULTIMAP_FLAGS, LabError)

    def build(tmp: Path) -> list[str]:
        log(f"building multimap for {kernel.arch} against {kernel.identity} (W=1)")
        src = tmp / "src"
        shutil.copytree(MODULE_SRC, src, ignore=shutil.ignore_patterns("*.o", "*.ko", ".*"))
        out = _make_modules(kernel, profile, src, MULTIMAP_FLAGS, "multimap")
        (tmp / "build.log").write_text(out)
        warnings = [ln for ln in out.splitlines() if WARNING.search(ln) and "BTF" not in ln]
        if warnings:
            raise LabError(
                f"multimap build for {kernel.arch} has warnings (W=1 must be clean):\n"
                + "\n".join(warnings[:20])
            )
        shutil.copy2(src / "multimap.ko", tmp / "multimap.ko")
        depends = _run(["modinfo", "-F", "depends", str(tmp / "multimap.ko")], None, "modinfo")
        (tmp / "depends").write_text(depends.strip())
        shutil.rmtree(src)
        return ["multimap.ko"]

    path = Entry("modules", key).ensure(build, log)
    deps = tuple(d for d in (path / "depends").read_text().strip().split(",") if d)
    return ModuleBuild(ko=path / "multimap.ko", log=path / "build.log", depends=deps)


def _entry_point(tool: str) -> str:
    return tool.replace("-", "_") + "_main"


def build_tools(arch: str, log: Log = stderr_log) -> dict[str, Path]:
    """The guest tools: tool name -> the one static binary (MULTICALL) that runs them all; a copy
    or a link of it named after a tool runs that tool."""
    profile = get_profile(arch)
    cc = f"{profile.cross_compile}gcc"
    flags = [*TOOL_FLAGS, f"-I{MODULE_SRC / 'uapi'}", f"-I{INCLUDE}"]
    key = f"{arch}-" + hash_strings(
        [
            TOOLS_RECIPE,
            hash_tree(TOOLS_SRC),
            (MODULE_SRC / "uapi/multimap.h").read_text(),
            hash_tree(INCLUDE),
            compiler_version(cc),
            MULTICALL,
            *TOOLS,
            *TOOL_FLAGS,
        ]
    )

    def build(tmp: Path) -> list[str]:
        log(f"building the guest tools for {arch}")
        same = [*flags, f"-ffile-prefix-map={tmp}=."]  # no temporary path in the debug info
        objects = []
        for tool in TOOLS:  # each tool's main() renamed, to be called by the multi-call main()
            obj = tmp / f"{tool}.o"
            argv = [cc, *same, f"-Dmain={_entry_point(tool)}", "-c", "-o", str(obj)]
            _run([*argv, str(TOOLS_SRC / f"{tool}.c")], None, f"{tool} build for {arch}")
            objects.append(str(obj))
        table = tmp / "tools.def"
        table.write_text("".join(f'TOOL({_entry_point(t)}, "{t}")\n' for t in TOOLS))
        main = [cc, *same, f"-I{tmp}", "-static", "-o", str(tmp / MULTICALL)]
        _run([*main, str(TOOLS_SRC / f"{MULTICALL}.c"), *objects], None, f"tools for {arch}")
        for leftover in [table, *map(Path, objects)]:
            leftover.unlink()
        return [MULTICALL]

    binary = Entry("tools", key).ensure(build, log) / MULTICALL
    return {tool: binary for tool in TOOLS}


def tools_binary(tools: dict[str, Path]) -> Path:
    """The one binary behind build_tools' names."""
    (binary,) = set(tools.values())
    return binary


def install_tools(tools: dict[str, Path], folder: Path) -> None:
    """The tools binary copied into folder once, with a relative link per tool."""
    shutil.copy(tools_binary(tools), folder / MULTICALL)
    for tool in tools:
        (folder / tool).unlink(missing_ok=True)
        (folder / tool).symlink_to(MULTICALL)


def guest_extras(kernel: Kernel, log: Log = stderr_log) -> tuple[Extra, ...]:
    """The module and tools, as files for the initramfs (without their debug information: the
    host keeps it, for symbols and gdb)."""
    tools = build_tools(kernel.arch, log)
    extras = [Extra(f"usr/bin/{MULTICALL}", tools_binary(tools), 0o755, strip="all")]
    extras += [Extra(f"usr/bin/{name}", link=MULTICALL) for name in tools]
    if kernel.kdir is None:
        log(f"{kernel.identity} has no build tree: the guest gets no multimap module")
        return tuple(extras)
    mod = build_module(kernel, log)
    ko = "lib/modules/{release}/extra/multimap.ko"
    extras.append(Extra(ko, mod.ko, 0o644, mod.depends, strip="debug"))
    return tuple(extras)


class BuildFailure(LabError):
    """A user's module did not build: the message quotes the compiler."""


BUILD_PRODUCTS = re.compile(
    r"(\.o|\.ko|\.mod|\.mod\.c|\.cmd|\.a|\.order|\.symvers|\.dwo)$|^\.tmp_versions$"
)


def _source_key(src: Path) -> str:
    """A module folder's content key, leaving out what a build there leaves behind."""
    parts: list[str | bytes] = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        if any(BUILD_PRODUCTS.search(part) for part in rel.parts):
            continue
        parts += [str(rel), oct(path.stat().st_mode & 0o777), path.read_bytes()]
    return hash_strings(parts)


BYO_FLAGS = ("W=1", "KCFLAGS=-g")  # debug info: its crash reports decode to file:line


def build_external_module(kernel: Kernel, src: Path, log: Log = stderr_log) -> tuple[Path, ...]:
    """A user's out-of-tree module folder (Kbuild or Makefile) built for kernel: W=1, debug info
    (crash reports decode to its file:line), cached by content.  Its .ko files in Kbuild's
    order.  A build error is a BuildFailure quoting the compiler (warnings are not errors here:
    it is not the lab's code)."""
    if not is_module_folder(src):
        raise BuildFailure(f"{src}: not a module folder (no Kbuild or Makefile)")
    # The folder is in the key: -ffile-prefix-map bakes it into the .ko (a WARNING's __FILE__,
    # the debug info), so the same sources elsewhere must not reuse this build.
    flags_key = (*BYO_FLAGS, "file-prefix-map", str(src.resolve()))
    profile, key = _kbuild_key(kernel, str(src), _source_key(src), flags_key, BuildFailure)

    def build(tmp: Path) -> list[str]:
        log(f"building {src} for {kernel.arch} against {kernel.identity} (W=1)")
        work = tmp / "src"
        shutil.copytree(
            src, work, ignore=lambda _d, names: [n for n in names if BUILD_PRODUCTS.search(n)]
        )
        # Debug info and __FILE__ (a WARNING's "at FILE:LINE", BUG()'s) name the user's own
        # files, not this temporary copy (gone once the entry is published).
        prefix_map = f"-ffile-prefix-map={work}={src}"
        flags = (*BYO_FLAGS[:-1], f"{BYO_FLAGS[-1]} {prefix_map}")
        try:
            out = _make_modules(kernel, profile, work, flags, str(src))
        except LabError as exc:
            text = str(exc).replace(str(work), str(src))
            raise BuildFailure(f"{src} does not build for {kernel.arch}: {text}") from None
        (tmp / "build.log").write_text(out.replace(str(work), str(src)))
        order = work / "modules.order"
        names = (
            [
                Path(ln.strip()).with_suffix(".ko").name
                for ln in order.read_text().splitlines()
                if ln.strip()
            ]
            if order.exists()
            else []
        )
        kos = [work / n for n in names] or sorted(work.glob("*.ko"))
        if not kos:
            raise BuildFailure(f"{src} built no .ko file (is obj-m set?)")
        (tmp / "kos").mkdir()
        for ko in kos:
            shutil.copy2(ko, tmp / "kos" / ko.name)
        (tmp / "order").write_text("\n".join(ko.name for ko in kos))
        shutil.rmtree(work)
        return [f"kos/{ko.name}" for ko in kos]

    path = Entry("byo-modules", key).ensure(build, log)
    return tuple(path / "kos" / name for name in (path / "order").read_text().split())
