"""What the schema alone cannot say: the steps' names must refer to mappings that are held at that
point, multimap-only checks are refused on mappings the lab did not make, and the files a scenario
names (its modules' folders, its programs) must exist, relative to the scenario file.  Each
problem carries the YAML location of the field it is about, for a file:line error."""

from __future__ import annotations

import re
from pathlib import Path

from lab.crash import patterns
from lab.paths import is_module_folder
from lab.scenario.schema import CheckStep, Crash, MapStep, ProgramStep, ReleaseStep, Scenario

Loc = tuple[int | str, ...]
MULTIMAP_CHECKS = ("pfns_match_module", "contents_match", "source")


def _files(s: Scenario, base: Path) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for i, spec in enumerate(s.modules):
        if spec.source is None:
            continue
        folder = base / spec.source
        if not folder.is_dir():
            out.append((("modules", i, "source"), f"no such folder: {folder}"))
        elif not is_module_folder(folder):
            why = f"{folder} is not a module folder (no Kbuild or Makefile)"
            out.append((("modules", i, "source"), why))
    for i, st in enumerate(s.steps):
        if isinstance(st.body, ProgramStep) and not (base / st.body.source).is_file():
            loc: Loc = ("steps", i, "program", "source")
            out.append((loc, f"no such file: {base / st.body.source}"))
    return out


def _check(loc: Loc, body: CheckStep, held: dict[str, bool]) -> list[tuple[Loc, str]]:
    if body.of not in held:
        return [((*loc, "of"), f"no mapping named {body.of!r} is held here (map or hold it first)")]
    if not held[body.of]:
        return []
    return [
        ((*loc, f), f"{f} is for multimap's own mappings; {body.of!r} is not one")
        for f in MULTIMAP_CHECKS
        if f in body.model_fields_set
    ]


def _expected_kind(s: Scenario) -> list[tuple[Loc, str]]:
    """expect.kernel.kind must name a kind the crash table gives reports (a typo, WARNNING,
    would wait for a report that can never come)."""
    want = s.expect.kernel
    if not isinstance(want, Crash) or not want.kind:
        return []
    kinds = sorted({p.kind for p in patterns()})
    if any(re.fullmatch(want.kind, k) for k in kinds):
        return []
    return [(("expect", "kernel", "kind"), f"{want.kind!r} is no report kind: {', '.join(kinds)}")]


def problems(s: Scenario, base: Path | None) -> list[tuple[Loc, str]]:
    """Every problem, in file order; base None leaves the file checks out."""
    out = _files(s, base) if base is not None else []
    held: dict[str, bool] = {}  # name -> foreign (not a multimap buffer)
    for i, st in enumerate(s.steps):
        loc: Loc = ("steps", i, st.kind)
        body = st.body
        if isinstance(body, ProgramStep) and body.hold is not None:
            held[body.hold] = True
        elif isinstance(body, MapStep) and body.errno is None:
            if not body.foreign and not s.module.load:
                out.append((loc, "a multimap map, but the scenario says module: {load: false}"))
            held[body.name] = body.foreign
        elif isinstance(body, CheckStep):
            out += _check(loc, body, held)
        elif isinstance(body, ReleaseStep):
            if body.of not in held:
                out.append(((*loc, "of"), f"no mapping named {body.of!r} is held here"))
            held.pop(body.of, None)
    return out + _expected_kind(s)
