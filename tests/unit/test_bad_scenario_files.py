"""A corpus of malformed scenario files: each one is refused at load time with a line that names
the file (and the line), never a traceback, never a hang, no VM started."""

from __future__ import annotations

import os
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
    # A second key of the same name: YAML keeps the last one silently (here: the first steps).
    "duplicate-key": (
        (HEAD + "steps: [{run: {command: 'false'}}]\nsteps: [{release: {}}]\n").encode(),
        r":4: steps: named twice \(first at line 3\)",
    ),
    "duplicate-nested-key": (
        (HEAD + "steps:\n  - run: {command: 'true', command: 'false'}\n").encode(),
        r":4: command: named twice",
    ),
    "bool-pages": ((HEAD + "steps: [{map: {pages: true}}]\n").encode(), r"pages: .*integer"),
    "quoted-pages": ((HEAD + "steps: [{map: {pages: '12'}}]\n").encode(), r"pages: .*integer"),
    "float-pages": ((HEAD + "steps: [{map: {pages: 1e999}}]\n").encode(), r"pages: .*integer"),
    "status-256": (
        (HEAD + "steps: [{run: {command: 'true', status: 256}}]\n").encode(),
        r":3: steps\[0\]\.run\.status: .*less than or equal to 255",
    ),
    "nul-in-command": (
        (HEAD + 'steps: [{run: {command: "a\\0b"}}]\n').encode(),
        r":3: steps\[0\]\.run\.command: a NUL character at offset 1",
    ),
    "nul-in-source": (
        (HEAD + 'steps: [{program: {source: "a\\0.c"}}]\n').encode(),
        r"program\.source: a NUL character",
    ),
    "python-tag": (
        (HEAD + "steps: [{run: {command: !!python/object/apply:os.system [true]}}]\n").encode(),
        r":3: malformed YAML: could not determine a constructor",
    ),
    "two-documents": ((HEAD + "steps: [{release: {}}]\n---\nx: 1\n").encode(), r":4: .*document"),
    "utf16": ((HEAD + "steps: [{release: {}}]\n").encode("utf-16"), r":1: not UTF-8"),
    "yaml-boolean-name": (
        b"name: off\ndescription: d\nsteps: [{release: {}}]\n",
        r":1: name: Input should be a valid string \(YAML reads off as a boolean: quote it",
    ),
    "integer-or-string": (
        (HEAD + "module: {params: {npages: [8, 9]}}\nsteps: [{release: {}}]\n").encode(),
        r":3: module\.params\.npages: Input should be a valid integer or a valid string$",
    ),
    "memory-unit": (
        (HEAD + "boot: {memory: 64K}\nsteps: [{release: {}}]\n").encode(),
        r":3: boot\.memory: '64K' is no memory size: a number of MiB or GiB such as 512M or 2G$",
    ),
    "size-pattern-only": (
        (HEAD + "steps: [{map: {device: /dev/x, length: 64X}}, {release: {}}]\n").encode(),
        r":3: steps\[0\]\.map\.length: '64X' is no size: bytes, or a number with K, M or G "
        r"such as 64K$",
    ),
    "long-value": (
        (HEAD + "steps: [{map: {backing: '" + "y" * 3000 + "'}}]\n").encode(),
        r":3: steps\[0\]\.map\.backing: .*got 'y{59}\.\.\. \(3002 characters\)$",
    ),
    "many-problems": (
        (HEAD + "steps:\n" + "  - map: {pages: -1}\n" * 900).encode(),
        r"\A(?:[^\n]*:\d+: steps\[\d+\]\.map\.pages: [^\n]*\n){20}\.\.\. and 880 more problems in "
        r"this file\Z",
    ),
    "kind-typo": (
        (HEAD + "steps: [{run: {command: 'true'}}]\nexpect: {kernel: {kind: WARNNING}}\n").encode(),
        r":4: expect\.kernel\.kind: 'WARNNING' is no report kind: .*WARNING",
    ),
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


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # no writer: opening it must not wait for one


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")  # never ends


def _folder(path: Path) -> None:
    path.mkdir()


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path.name)


NOT_FILES = {"fifo": _fifo, "dev-zero": _dev_zero, "folder": _folder, "loop": _symlink_loop}


@pytest.mark.parametrize("case", sorted(NOT_FILES))
def test_what_is_not_a_file_is_refused_at_once(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.yaml"
    NOT_FILES[case](path)
    with pytest.raises(ScenarioError) as exc:
        load_file(path)
    assert str(exc.value).startswith(f"{path}: cannot read: "), exc.value


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
