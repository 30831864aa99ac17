"""The CI examples in docs/ci are copied into other repositories as they are: each must be valid
YAML of its CI system's shape, and every remaplab command line in it must parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from lab.cli import build_parser

CI = Path(__file__).resolve().parents[2] / "docs" / "ci"
EXAMPLES = sorted(CI.glob("*.yml"))


def _scripts(doc: object) -> list[str]:
    """Every shell script in the document (GitHub's run:, GitLab's script: lines)."""
    out: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "run" and isinstance(value, str):
                out.append(value)
            elif key in ("script", "before_script", "after_script") and isinstance(value, list):
                out += [v for v in value if isinstance(v, str)]
            else:
                out += _scripts(value)
    elif isinstance(doc, list):
        for value in doc:
            out += _scripts(value)
    return out


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"github-actions.yml", "gitlab-ci.yml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid_yaml_of_its_shape(example: Path) -> None:
    doc = yaml.safe_load(example.read_text())
    assert isinstance(doc, dict)
    if example.name.startswith("github"):
        assert doc["jobs"] and all("steps" in job for job in doc["jobs"].values())
    else:
        assert any(isinstance(v, dict) and "script" in v for v in doc.values())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_remaplab_command_parses(example: Path) -> None:
    parser = build_parser()
    seen = 0
    for script in _scripts(yaml.safe_load(example.read_text())):
        for line in script.replace("\\\n", " ").splitlines():
            line = re.sub(r"\$\{\{[^}]*\}\}", "1", line)  # ${{ matrix.shard }}: a value
            line = re.sub(r"\$\{?\w+\}?", "1", line)  # $SHARDS, $CI_NODE_INDEX
            m = re.search(r"remaplab (\w(?:[^;&|)\"]|\"[^\"]*\")*)", line)
            if m is None:
                continue
            parser.parse_args(shlex.split(m.group(1)))  # SystemExit (exit 2) on a wrong option
            seen += 1
    assert seen, f"no remaplab command in {example.name}"
