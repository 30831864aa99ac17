"""Load scenario YAML files; every error names file:line and the field, before anything boots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lab.errors import LabError, shown
from lab.readfile import read_limited
from lab.scenario import semantics
from lab.scenario.schema import Scenario


class ScenarioError(LabError):
    pass


@dataclass(frozen=True)
class Loaded:
    scenario: Scenario
    path: Path
    text: str
    base: Path | None = None  # where its relative paths start (default: the file's folder)

    @property
    def folder(self) -> Path:
        return self.base if self.base is not None else self.path.parent

    def sources(self) -> list[str]:
        """The relative paths it names: its modules' folders and its programs."""
        s = self.scenario
        out = [m.source for m in s.modules if m.source is not None]
        return out + [st.body.source for st in s.steps if st.kind == "program"]


def _node_at(node: yaml.Node, loc: tuple[int | str, ...]) -> yaml.Node:
    """The YAML node that a pydantic error location points at (as deep as it exists)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                return key or node
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


# Bounds on what a scenario file may be: far beyond any real scenario, so a user never meets
# them by accident, and small enough that a wrong file is refused within a second.
MAX_BYTES = 256 * 1024
MAX_NODES = 50_000  # YAML nodes after expanding aliases (an alias bomb is refused, not built)
MAX_PROBLEMS = 20  # problems listed per file; the rest are counted
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster when present


def _expanded_nodes(node: yaml.Node, limit: int) -> int:
    """How many nodes the document has with every alias expanded (stops counting past limit)."""
    memo: dict[int, int] = {}

    def count(n: yaml.Node) -> int:
        if id(n) in memo:
            return memo[id(n)]
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(count(child) for child in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(count(k) + count(v) for k, v in n.value)
        memo[id(n)] = min(total, limit + 1)
        return memo[id(n)]

    return count(node)


def _duplicate_key(root: yaml.Node) -> str | None:
    """'KEY' at line N (first at line M) for a mapping that names a key twice: YAML loaders
    keep the last one silently, so a second `steps:` would drop the first without a word."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:  # an alias: already walked
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if key.value in first:
                        return (
                            f"{line}: {key.value}: named twice (first at line {first[key.value]})"
                        )
                    first[key.value] = line
                todo += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return None


def _parse(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    if len(text.encode()) > MAX_BYTES:
        raise ScenarioError(
            f"{path}:1: the file is {len(text.encode())} bytes; a scenario may have at most "
            f"{MAX_BYTES // 1024} KiB"
        )
    try:
        loader = LOADER(text)
        try:
            root = loader.get_single_node()
            if root is not None and _expanded_nodes(root, MAX_NODES) > MAX_NODES:
                raise ScenarioError(
                    f"{path}:{root.start_mark.line + 1}: more than {MAX_NODES} YAML nodes "
                    "once aliases are expanded (an alias bomb?)"
                )
            twice = _duplicate_key(root) if root is not None else None
            if twice is not None:
                raise ScenarioError(f"{path}:{twice}")
            data: Any = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
            line = f":{text[: exc.position].count(chr(10)) + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{path}{line}: malformed YAML: {problem}") from None
    except RecursionError:
        raise ScenarioError(f"{path}:1: malformed YAML: nested too deeply") from None
    return root, data


def decode(raw: bytes, path: Path) -> str:
    """A scenario file's text: UTF-8, else an error naming the line of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(
            f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "a scenario is a UTF-8 YAML file"
        ) from None


def _noise(err: Any, errors: list[Any]) -> bool:
    """Errors that only echo another one: a union branch that did not apply (`kernel: clean |
    {kind, title}` given a mapping), or a list "too short" because its items failed."""
    loc = err["loc"]
    others = [e for e in errors if e is not err and e["loc"][: len(loc)] == loc]
    if err["type"] == "too_short" and others:
        return True
    if not (isinstance(err.get("input"), dict) or (loc and _clean_loc(loc[-1:]) == ())):
        return False
    # A type error of a union branch is noise next to a branch the value fits: one that failed
    # on a constraint (`length: 64X`: the pattern, not "not an integer") or deeper inside it
    # (`kernel: {kind: 1}`: the kind, not "should be 'clean'").  Next to other type errors of
    # the same field it is half the story (`npages: [8, 9]`), kept and joined.
    here = _clean_loc(loc)
    fits = [
        e
        for e in errors
        if e is not err
        and _clean_loc(e["loc"])[: len(here)] == here
        and (
            len(_clean_loc(e["loc"])) > len(here)
            or not str(e["type"]).endswith(("_type", "literal_error"))
        )
    ]
    return err["type"] in ("literal_error", "string_type", "int_type") and bool(fits)


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The YAML path of an error: pydantic's union and validator markers dropped."""
    internal = ("function-", "literal[", "constrained-")
    return tuple(
        p
        for p in loc
        if not (
            isinstance(p, str)
            and (p.startswith(internal) or p in ("int", "str") or p[:1].isupper())
        )
    )


def _describe(errors: list[Any], root: yaml.Node, path: Path) -> list[str]:
    lines: list[str] = []
    for err in errors:
        if _noise(err, errors):
            continue
        loc = _clean_loc(err["loc"])
        node = _node_at(root, loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "literal_error":
            msg = f"{msg}, got {shown(err.get('input'))}"
        where = f"{path}:{node.start_mark.line + 1}: {_field(loc)}: "
        same = next((i for i, ln in enumerate(lines) if ln.startswith(where)), None)
        if same is None:
            lines.append(where + msg)
        elif msg not in lines[same]:  # another union branch: "a valid integer or a valid string"
            lines[same] += " or " + msg.removeprefix("Input should be ")
        if err["type"] == "string_type" and isinstance(err.get("input"), bool):
            hint = f" (YAML reads {_source(node)} as a boolean: quote it)"
            index = same if same is not None else len(lines) - 1
            lines[index] += hint if hint not in lines[index] else ""
    return lines


def _bounded(lines: list[str]) -> str:
    """At most MAX_PROBLEMS of a file's problems, then how many more there are."""
    more = len(lines) - MAX_PROBLEMS
    if more <= 1:
        return "\n".join(lines)
    return "\n".join([*lines[:MAX_PROBLEMS], f"... and {more} more problems in this file"])


def _source(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "it"


def load_text(text: str, path: Path, base: Path | None = None) -> Scenario:
    """The scenario in text (from path); with base (its folder), the files it names are
    checked too."""
    root, data = _parse(text, path)
    if not isinstance(data, dict) or root is None:
        raise ScenarioError(f"{path}:1: a scenario is a YAML mapping (name, description, steps...)")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_bounded(_describe(exc.errors(), root, path))) from None
    found = semantics.problems(scenario, base)
    if found:
        raise ScenarioError(
            _bounded(
                [
                    f"{path}:{_node_at(root, loc).start_mark.line + 1}: {_field(loc)}: {message}"
                    for loc, message in found
                ]
            )
        )
    return scenario


def load_file(path: Path, base: Path | None = None) -> Loaded:
    text = decode(
        read_limited(path, MAX_BYTES, "a scenario is a UTF-8 YAML file", ScenarioError), path
    )
    scenario = load_text(text, path, base or path.parent)
    if scenario.name != path.stem:
        raise ScenarioError(
            f"{path}:1: name: {scenario.name!r} must equal the file name {path.stem!r}"
        )
    return Loaded(scenario, path, text, base)


def load_dir(directory: Path) -> list[Loaded]:
    files = sorted(directory.glob("*.yaml"))
    errors, loaded = [], []
    for f in files:
        try:
            loaded.append(load_file(f))
        except ScenarioError as exc:
            errors.append(str(exc))
    if errors:
        raise ScenarioError("\n".join(errors))
    return loaded


def select(loaded: list[Loaded], names: list[str]) -> list[Loaded]:
    if not names:
        return loaded
    by_name = {item.scenario.name: item for item in loaded}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ScenarioError(
            f"unknown scenario {', '.join(map(repr, unknown))}; see `remaplab run --list`"
        )
    return [by_name[n] for n in names]
