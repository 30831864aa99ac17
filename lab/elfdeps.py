"""Shared-library closure of a dynamically linked program, resolved inside an extracted
Debian root of the target architecture (the host's ldd cannot run an arm64 binary)."""

from __future__ import annotations

from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from lab.errors import LabError


def needed(path: Path) -> tuple[list[str], str | None]:
    """(DT_NEEDED names, PT_INTERP) of an ELF file."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        names: list[str] = []
        interp = None
        for segment in elf.iter_segments():
            if segment["p_type"] == "PT_INTERP":
                interp = segment.get_interp_name()  # type: ignore[attr-defined]
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                tags = section.iter_tags("DT_NEEDED")
                names += [tag.needed for tag in tags]  # type: ignore[attr-defined]
        return names, interp


MAX_LINK_HOPS = 40  # the kernel's own limit on symbolic links followed in one path lookup


def resolve_in(root: Path, rel: str) -> Path:
    """rel (a path inside root) with its symbolic links followed inside root, as in a chroot:
    an absolute link target is relative to root.  Path.resolve() would follow a package's
    lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 to the host's own
    loader, which need not be the guest's."""
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            del done[-1:]
            continue
        here = root.joinpath(*done, part)
        if not here.is_symlink():
            done.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise LabError(f"{rel}: more than {MAX_LINK_HOPS} symbolic links under {root}")
        target = here.readlink().as_posix()
        if target.startswith("/"):
            done = []
        todo[:0] = [p for p in target.split("/") if p not in ("", ".")]
    return root.joinpath(*done)


def library_dirs(triplet: str) -> list[str]:
    return [f"lib/{triplet}", f"usr/lib/{triplet}", "lib", "usr/lib"]


def closure(root: Path, binary: Path, triplet: str) -> dict[str, Path]:
    """Map from guest path (e.g. 'lib/aarch64-linux-gnu/libc.so.6') to the file in root."""
    found: dict[str, Path] = {}
    todo = [binary]
    while todo:
        names, interp = needed(todo.pop())
        if interp:
            guest = interp.lstrip("/")
            src = resolve_in(root, guest)
            if not src.is_file():
                raise LabError(f"{binary.name}: interpreter {interp} not found under {root}")
            found.setdefault(guest, src)
        for name in names:
            for directory in library_dirs(triplet):
                guest = f"{directory}/{name}"
                src = resolve_in(root, guest)
                if src.is_file():
                    if guest not in found:
                        found[guest] = src
                        todo.append(src)
                    break
            else:
                raise LabError(f"{binary.name}: library {name} not found under {root}")
    return found
