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


def library_dirs(root: Path, triplet: str) -> list[Path]:
    return [root / "lib" / triplet, root / "usr/lib" / triplet, root / "lib", root / "usr/lib"]


def closure(root: Path, binary: Path, triplet: str) -> dict[str, Path]:
    """Map from guest path (e.g. 'lib/aarch64-linux-gnu/libc.so.6') to the file in root."""
    found: dict[str, Path] = {}
    todo = [binary]
    dirs = library_dirs(root, triplet)
    while todo:
        names, interp = needed(todo.pop())
        if interp:
            src = (root / interp.lstrip("/")).resolve()
            if not src.exists():
                raise LabError(f"{binary.name}: interpreter {interp} not found under {root}")
            if interp.lstrip("/") not in found:
                found[interp.lstrip("/")] = src
        for name in names:
            for directory in dirs:
                candidate = directory / name
                if candidate.exists():
                    guest = str(candidate.relative_to(root))
                    if guest not in found:
                        found[guest] = candidate.resolve()
                        todo.append(candidate.resolve())
                    break
            else:
                raise LabError(f"{binary.name}: library {name} not found under {root}")
    return found
