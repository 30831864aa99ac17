"""A corpus of malformed scenario files: each one is refused at load time with a line that names
the file (and the line), never a traceback, never a hang, no VM started."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.scenario.load import MAX_BYTES, ScenarioError, load_file

HEAD = "name: {name}\ndescription: d\n"


def _random_bytes() -> bytes:
    return random.Random(7).randbytes(4096)


def _many_steps() -> bytes:
    return (HEAD + "steps:\n" + "  - run: {command: 'true'}\n" * 200_000).encode()


def _steps_under_the_size_limit() -> bytes:
    return (HEAD + "steps: [" + "{release: {}}," * 1500 + "]\n").encode()


def _alias_bomb() -> bytes:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return (HEAD + "\n".join(lines) + "\nsteps: [{run: {command: 'true'}}]\n").encode()


CORPUS: dict[str, tuple[bytes, str]] = {
    "random-bytes": (_random_bytes(), r"not UTF-8 text|malformed YAML"),
    "latin1": (
        (HEAD + "# caf\xe9\nsteps: [{run: {command: 'true'}}]\n").encode("latin-1"),
        r":3: not UTF-8 text \(byte 0xe9",
    ),
    "nul-bytes": (b"name: x\n\0\0\0\n", r"malformed YAML"),
    "too-many-steps": (_many_steps(), rf"at most {MAX_BYTES // 1024} KiB"),
    "steps-limit": (_steps_under_the_size_limit(), r"steps: .*at most 1000"),
    "huge-memory": (
        (HEAD + "boot: {memory: 999999999G}\nsteps: [{run: {command: 'true'}}]\n").encode(),
        r":3: boot.memory: .*(outside|at most)",
    ),
    "huge-pages": (
        (HEAD + "steps:\n  - map: {pages: 99999999999999999999999999}\n").encode(),
        r":4: steps\[0\]\.map\.pages: .*less than or equal to 1048576",
    ),
    "alias-bomb": (_alias_bomb(), r"aliases are expanded"),
    "deep-nesting": ((HEAD + "steps: " + "[" * 5000 + "]" * 5000 + "\n").encode(), r"YAML"),
    "empty": (b"", r":1: a scenario is a YAML mapping"),
    "a-list": (b"- 1\n- 2\n", r":1: a scenario is a YAML mapping"),
    "huge-param": (
        (
            HEAD + "module: {params: {x: 99999999999999999999999}}\nsteps: [{release: {}}]\n"
        ).encode(),
        r":3: module.params.x",
    ),
    "empty-command": ((HEAD + "steps: [{run: {command: ''}}]\n").encode(), r"command"),
    "unknown-arch": ((HEAD + "arches: [riscv]\nsteps: [{release: {}}]\n").encode(), r"riscv"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_refused_with_file_and_line(tmp_path: Path, case: str) -> None:
    data, pattern = CORPUS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(data.replace(b"{name}", case.encode()))
    with pytest.raises(ScenarioError) as exc:
        load_file(path)
    message = str(exc.value)
    assert message.startswith(f"{path}:"), message
    assert re.search(pattern, message), message


def test_the_cli_refuses_a_bad_folder_in_one_line_per_file(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(CORPUS["latin1"][0].replace(b"{name}", b"latin1"))
    (tmp_path / "bytes.yaml").write_bytes(_random_bytes())
    res = subprocess.run(
        [sys.executable, "-m", "lab.cli", "run", "--scenarios", str(tmp_path), "--arch", "x86_64"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 125, res.stderr
    assert "Traceback" not in res.stderr
    assert f"{tmp_path}/latin1.yaml:3: not UTF-8" in res.stderr
    assert f"{tmp_path}/bytes.yaml:" in res.stderr
