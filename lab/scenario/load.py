"""Load scenario YAML files; every error names file:line and the field, before anything boots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lab.errors import LabError
from lab.scenario.schema import Scenario


class ScenarioError(LabError):
    pass


@dataclass(frozen=True)
class Loaded:
    scenario: Scenario
    path: Path
    text: str


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


def load_text(text: str, path: Path) -> Scenario:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{path}{line}: malformed YAML: {problem}") from None
    if not isinstance(data, dict) or root is None:
        raise ScenarioError(f"{path}:1: a scenario is a YAML mapping (name, description, steps...)")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        errors = exc.errors()
        for err in errors:
            # A union such as `kernel: clean | {kind, title}` given a mapping: the mapping
            # branch's errors say what is wrong; "should be 'clean'" is noise.
            parent = err["loc"][:-1]
            if (
                err["type"] == "literal_error"
                and isinstance(err.get("input"), dict)
                and any(e is not err and e["loc"][: len(parent)] == parent for e in errors)
            ):
                continue
            loc = tuple(
                p
                for p in err["loc"]
                if not (
                    isinstance(p, str)
                    and (p.startswith(("function-", "literal[")) or p[:1].isupper())
                )
            )
            node = _node_at(root, loc)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            elif err["type"] == "literal_error":
                msg = f"{msg}, got {err.get('input')!r}"
            lines.append(f"{path}:{node.start_mark.line + 1}: {_field(loc)}: {msg}")
        raise ScenarioError("\n".join(lines)) from None


def load_file(path: Path) -> Loaded:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    scenario = load_text(text, path)
    if scenario.name != path.stem:
        raise ScenarioError(
            f"{path}:1: name: {scenario.name!r} must equal the file name {path.stem!r}"
        )
    return Loaded(scenario, path, text)


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
