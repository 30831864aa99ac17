"""The culprit function of a report: stack steps walked down its lines, reporting machinery and
generic helpers skipped, stalls and hangs attributed by their extractors."""

from __future__ import annotations

import functools
import re
import subprocess

from lab.crash.table import Frames, Pattern, Skip

Steps = tuple[re.Pattern[str] | None, ...]


# Rust symbols, as the kernel prints them (kallsyms keeps them mangled): the v0 scheme (_R...)
# and the legacy one, an Itanium-like name ending in a hash (_ZN...17h<16 hex>E).
RUST = re.compile(r"^_R[A-Za-z0-9_]+$|^_ZN[A-Za-z0-9_$.]*17h[0-9a-f]{16}E$")
RUST_NOISE = re.compile(r"\[[0-9a-f]+\]|::h[0-9a-f]{16}$")  # crate disambiguators, legacy hash


@functools.lru_cache(maxsize=1024)
def demangle_rust(name: str) -> str:
    """A Rust symbol as a path, as syzkaller titles it: _RNvMs3_NtCs..._11rust_binder7process
    NtB5_7Process10update_ref is <rust_binder::process::Process>::update_ref.  binutils'
    c++filt demangles both schemes (the lab's toolchain has it); its crate disambiguators and
    the legacy hash are dropped.  The name as it is when c++filt is missing or cannot."""
    from lab.hosttools import which

    tool = which("c++filt")
    if tool is None:
        return name
    try:
        out = subprocess.run(
            [tool, "-p", "--", name], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return name
    return RUST_NOISE.sub("", out) if out and out != name else name


def demangle(name: str) -> str:
    """A C++ (Itanium) mangled name without its parameters: _Z8fakeNameiii is fakeName,
    _ZN2ns4funcEv is ns::func; a Rust one as its path (demangle_rust).  Anything else is
    returned as it is."""
    if RUST.match(name):
        return demangle_rust(name)
    if not name.startswith("_Z"):
        return name
    rest, nested, parts = name[2:], name.startswith("_ZN"), []
    rest = rest[1:] if nested else rest
    while m := re.match(r"(\d+)", rest):
        size, rest = int(m.group(1)), rest[m.end() :]
        if size == 0 or len(rest) < size:
            return name
        parts.append(rest[:size])
        rest = rest[size:]
        if not nested:
            break
    return "::".join(parts) if parts else name


def _candidate(match: re.Match[str], skip: Skip | None, out: list[str]) -> None:
    """Every function the match captured (an arm frame names two), unless skipped."""
    for group in match.groups():
        name = demangle(group) if group else None
        if name and not (skip is not None and skip.search(name)):
            out.append(name)


def _frames_step(
    lines: list[str], pos: int, nxt: re.Pattern[str] | None, fr: Frames, state: _Walk
) -> tuple[int, bool]:
    """Frames from lines[pos] up to the next trace heading; returns the new position and
    whether the next step's line was met (and consumed)."""
    while pos < len(lines):
        line = lines[pos]
        pos += 1
        if fr.corrupted.search(line):
            state.ok = False
            return pos, False
        if fr.stack_start.search(line):
            return pos, False
        if nxt is not None and (m := nxt.search(line)):
            _candidate(m, state.skip, state.found)
            return pos, True
        for regex in fr.frame:
            if m := regex.search(line):
                _candidate(m, state.skip, state.found)
                break
    return pos, False


class _Walk:
    def __init__(self, skip: Skip | None) -> None:
        self.skip = skip
        self.found: list[str] = []
        self.ok = True


def walk(steps: Steps, lines: list[str], skip: Skip | None, fr: Frames) -> _Walk:
    """Apply steps down the lines: a regex step moves to its first matching line, the frames
    step (None) reads frames; every captured function not skipped is a candidate."""
    state = _Walk(skip)
    pos, idx = 0, 0
    while idx < len(steps):
        step = steps[idx]
        if step is None:
            nxt = steps[idx + 1] if idx + 1 < len(steps) else None
            pos, consumed = _frames_step(lines, pos, nxt, fr, state)
            idx += 2 if consumed else 1
            continue
        while pos < len(lines):
            line = lines[pos]
            pos += 1
            if fr.corrupted.search(line):
                state.ok = False
                break
            if m := step.search(line):
                _candidate(m, skip, state.found)
                break
        idx += 1
    return state


def strip_name(name: str, fr: Frames) -> str:
    """The shortest of the name with each syscall-wrapper prefix removed."""
    return min((name.removeprefix(p) for p in fr.strip_prefixes), key=len, default=name)


def _stall(frames: list[str], fr: Frames) -> str | None:
    """The frame just before the first dispatcher (syscall entry, workqueue, softirq...)."""
    if not frames:
        return None
    prev = frames[0]
    for frame in frames:
        if fr.stall_anchors.search(frame):
            keep = next((k for k in fr.stall_keep if k in frame), None)
            return keep or prev
        prev = frame
    return None


def _hang(frames: list[str], fr: Frames) -> str | None:
    """Hung tasks: the common victims grouped, else the first frame that is not waiting."""
    for frame in frames:
        for anchor, replacement in fr.hang_anchors:
            if anchor in frame:
                return replacement or frame
    return next((f for f in frames if not any(s in f for s in fr.hang_skip)), None)


def _pick(found: list[str], extractor: str | None, fr: Frames) -> str | None:
    frames = [strip_name(f, fr) for f in found]
    if extractor == "stall":
        return _stall(frames, fr)
    if extractor == "hang":
        return _hang(frames, fr)
    return frames[0] if frames else None


def culprit(pat: Pattern, lines: list[str], fr: Frames) -> str | None:
    """The pattern's culprit function in the report's lines, or None (a corrupted report)."""
    name: str | None = None
    for steps in (pat.stack, pat.stack2):
        if not steps:
            continue
        state = walk(steps, lines, pat.skip, fr)
        name = _pick(state.found, pat.extractor, fr)
        if name and state.ok:
            return name
    return name
