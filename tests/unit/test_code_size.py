"""The house rules on size: small modules with one job each, functions that fit on a screen."""

from __future__ import annotations

import ast

from lab.paths import REPO

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 70


def _modules() -> list[tuple[str, str]]:
    return [(str(p.relative_to(REPO)), p.read_text()) for p in sorted((REPO / "lab").rglob("*.py"))]


def test_no_module_over_400_lines() -> None:
    big = {name: n for name, text in _modules() if (n := len(text.splitlines())) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_no_function_over_70_lines() -> None:
    long = {}
    for name, text in _modules():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{name}:{node.lineno} {node.name}"] = length
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
