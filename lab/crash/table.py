"""The crash-pattern table (lab/data/crash_patterns.toml), loaded and checked.

Every row is validated when the table loads: an unknown key, a missing key, a regex that does
not compile, an unknown extractor or a title naming a group no regex has is an error that
names the row."""

from __future__ import annotations

import contextlib
import re
import threading
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lab.errors import LabError

TABLE = Path(__file__).resolve().parents[1] / "data" / "crash_patterns.toml"
FRAMES_STEP = "@frames"
EXTRACTORS = ("stall", "hang")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

_PATTERN_KEYS = {
    "start": str, "kind": str, "title": str, "require": str, "stack": list, "stack2": list,
    "skip": list, "skip_global": bool, "extractor": str, "cut": bool, "after_output": bool,
}  # fmt: skip
_REQUIRED = ("start", "kind", "title")
_SECTIONS: dict[str, dict[str, type]] = {
    "console": {
        "prefix": list, "ignore": list, "end": list, "replay": list, "cut": list,
        "aftermath": list, "aftermath_after": int, "skip_lines": list, "questionable": str,
        "max_lines": int,
    },
    "frames": {"stack_start": list, "frame": list, "corrupted": list, "skip": list,
               "strip_prefixes": list},
    "stall": {"anchors": list, "keep": list},
    "hang": {"anchors": dict, "skip": list},
}  # fmt: skip


class TableError(LabError):
    """The crash-pattern table is malformed."""


@dataclass(frozen=True)
class Skip:
    """Frame names a pattern skips: the global list and the pattern's own, compiled apart (the
    global one once for the whole table, not once per pattern with its own: 0.26 s a process)."""

    parts: tuple[re.Pattern[str], ...]

    def search(self, name: str) -> bool:
        return any(part.search(name) for part in self.parts)


@dataclass(frozen=True)
class Pattern:
    start: re.Pattern[str]
    kind: str
    title: str
    require: re.Pattern[str] | None = None
    stack: tuple[re.Pattern[str] | None, ...] = ()  # None is the "@frames" step
    stack2: tuple[re.Pattern[str] | None, ...] = ()
    skip: Skip | None = None  # this pattern's skip and the global one
    extractor: str | None = None
    cut: bool = True
    after_output: bool = False


@dataclass(frozen=True)
class Console:
    prefix: re.Pattern[str]
    ignore: re.Pattern[str]
    end: re.Pattern[str]
    replay: re.Pattern[str]  # a console's note that the record cut before it comes again whole
    cut: re.Pattern[str]
    aftermath: re.Pattern[str]
    aftermath_after: int
    skip_lines: re.Pattern[str]
    questionable: re.Pattern[str]
    max_lines: int


@dataclass(frozen=True)
class Frames:
    stack_start: re.Pattern[str]
    frame: tuple[re.Pattern[str], ...]
    corrupted: re.Pattern[str]
    strip_prefixes: tuple[str, ...]
    stall_anchors: re.Pattern[str]
    stall_keep: tuple[str, ...]
    hang_anchors: tuple[tuple[str, str], ...]
    hang_skip: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    patterns: tuple[Pattern, ...]
    any_start: re.Pattern[str]  # all starts at once: a quick first filter
    console: Console
    frames: Frames
    replace: tuple[tuple[re.Pattern[str], str], ...]


class _Loader:
    def __init__(self, data: dict[str, Any]) -> None:
        self.macros: dict[str, str] = dict(data.get("macros", {}))

    def expand(self, text: str) -> str:
        for _ in range(5):
            new = re.sub(r"\{\{(\w+)\}\}", lambda m: self.macros.get(m.group(1), m.group(0)), text)
            if new == text:
                break
            text = new
        if "{{" in text:
            raise ValueError(f"unknown macro in {text!r}")
        return text

    def regex(self, where: str, text: str) -> re.Pattern[str]:
        try:
            return re.compile(self.expand(text))
        except (re.error, ValueError) as exc:
            raise TableError(f"{TABLE.name}: {where}: bad regex {text!r}: {exc}") from None

    def any_of(self, where: str, items: list[str]) -> re.Pattern[str]:
        if not items:
            return re.compile(r"(?!)")
        return self.regex(where, "|".join(f"(?:{self.expand(i)})" for i in items))


def _check_keys(where: str, row: dict[str, Any], schema: dict[str, type]) -> None:
    for key, value in row.items():
        if key not in schema:
            raise TableError(f"{TABLE.name}: {where}: unknown key {key!r}")
        if not isinstance(value, schema[key]):
            want = schema[key].__name__
            raise TableError(f"{TABLE.name}: {where}: {key} must be a {want}, not {value!r}")


def _steps(ld: _Loader, where: str, steps: list[str]) -> tuple[re.Pattern[str] | None, ...]:
    return tuple(None if s == FRAMES_STEP else ld.regex(where, s) for s in steps)


def _check_title(where: str, row: dict[str, Any], pat: Pattern) -> None:
    groups = set(pat.start.groupindex) | {str(i) for i in range(pat.start.groups + 1)}
    if pat.require is not None:
        groups |= set(pat.require.groupindex)
    if pat.stack:
        groups.add("func")
    for name in _PLACEHOLDER.findall(row["title"]):
        if name not in groups:
            raise TableError(f"{TABLE.name}: {where}: title names {{{name}}}, which no regex has")


def _pattern(ld: _Loader, idx: int, row: dict[str, Any], skip: re.Pattern[str]) -> Pattern:
    where = f"pattern[{idx}] (start {row.get('start', '?')!r})"
    _check_keys(where, row, _PATTERN_KEYS)
    for key in _REQUIRED:
        if key not in row:
            raise TableError(f"{TABLE.name}: {where}: missing key {key!r}")
    extractor = row.get("extractor")
    if extractor is not None and extractor not in EXTRACTORS:
        raise TableError(f"{TABLE.name}: {where}: unknown extractor {extractor!r}")
    own = list(row.get("skip", []))
    pat = Pattern(
        start=ld.regex(where, row["start"]),
        kind=row["kind"],
        title=row["title"],
        require=ld.regex(where, row["require"]) if "require" in row else None,
        stack=_steps(ld, where, row.get("stack", [])),
        stack2=_steps(ld, where, row.get("stack2", [])),
        skip=Skip(
            ((skip,) if row.get("skip_global", True) else ())
            + ((ld.any_of(where, own),) if own else ())
        ),
        extractor=extractor,
        cut=row.get("cut", True),
        after_output=row.get("after_output", False),
    )
    _check_title(where, row, pat)
    return pat


def _section(data: dict[str, Any], name: str, parent: dict[str, Any] | None = None) -> Any:
    row = (parent if parent is not None else data).get(name)
    if not isinstance(row, dict):
        raise TableError(f"{TABLE.name}: missing table [{name}]")
    _check_keys(f"[{name}]", row, _SECTIONS[name])
    missing = set(_SECTIONS[name]) - set(row)
    if missing:
        raise TableError(f"{TABLE.name}: [{name}]: missing {', '.join(sorted(missing))}")
    return row


def _console(ld: _Loader, c: dict[str, Any]) -> Console:
    return Console(
        prefix=ld.regex("[console] prefix", "^" + "".join(c["prefix"])),
        ignore=ld.any_of("[console] ignore", c["ignore"]),
        end=ld.any_of("[console] end", c["end"]),
        replay=ld.any_of("[console] replay", c["replay"]),
        cut=ld.any_of("[console] cut", c["cut"]),
        aftermath=ld.any_of("[console] aftermath", c["aftermath"]),
        aftermath_after=c["aftermath_after"],
        skip_lines=ld.any_of("[console] skip_lines", c["skip_lines"]),
        questionable=ld.regex("[console] questionable", c["questionable"]),
        max_lines=c["max_lines"],
    )


def _frames(ld: _Loader, data: dict[str, Any]) -> Frames:
    f = _section(data, "frames")
    extractors = data.get("extractors", {})
    stall, hang = _section(data, "stall", extractors), _section(data, "hang", extractors)
    return Frames(
        stack_start=ld.any_of("[frames] stack_start", f["stack_start"]),
        frame=tuple(ld.regex("[frames] frame", r) for r in f["frame"]),
        corrupted=ld.any_of("[frames] corrupted", f["corrupted"]),
        strip_prefixes=tuple(f["strip_prefixes"]),
        stall_anchors=ld.any_of("[extractors.stall] anchors", stall["anchors"]),
        stall_keep=tuple(stall["keep"]),
        hang_anchors=tuple((str(k), str(v)) for k, v in hang["anchors"].items()),
        hang_skip=tuple(hang["skip"]),
    )


def parse(text: str) -> Table:
    """The table from TOML text (a separate step so tests can feed broken tables)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TableError(f"{TABLE.name}: {exc}") from None
    unknown = set(data) - {"macros", "console", "frames", "extractors", "replace", "pattern"}
    if unknown:
        raise TableError(f"{TABLE.name}: unknown table(s) {', '.join(sorted(unknown))}")
    ld = _Loader(data)
    skip = ld.any_of("[frames] skip", list(_section(data, "frames")["skip"]))
    replace = []
    for idx, row in enumerate(data.get("replace", [])):
        _check_keys(f"replace[{idx}]", row, {"match": str, "with": str})
        replace.append((ld.regex(f"replace[{idx}]", row["match"]), row["with"]))
    pats = tuple(_pattern(ld, i, row, skip) for i, row in enumerate(data.get("pattern", [])))
    return Table(
        patterns=pats,
        any_start=re.compile("|".join(f"(?:{p.start.pattern})" for p in pats) or "(?!)"),
        console=_console(ld, _section(data, "console")),
        frames=_frames(ld, data),
        replace=tuple(replace),
    )


_parsing = threading.Lock()


def table() -> Table:
    with _parsing:  # one parse even while warm()'s thread is at it
        return _table()


@cache
def _table() -> Table:
    return parse(TABLE.read_text())


def warm() -> None:
    """Parse the table in a thread (its ~300 regexes take 0.1-0.2 s to compile) while something
    slower runs, e.g. a guest boots, whose console is then checked at once.  A broken table is
    left for the caller of table() to report."""

    def parse_quietly() -> None:
        with contextlib.suppress(Exception):
            table()

    if _table.cache_info().currsize:
        return  # parsed already
    threading.Thread(target=parse_quietly, name="remaplab-crash-table", daemon=True).start()
