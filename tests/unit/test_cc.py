"""remaplab cc / lab.cc.compile_static: static binaries for each arch, cached, clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.cc import INCLUDE, compile_static
from lab.cli import EXIT_LAB, main
from lab.errors import LabError

PROGRAM = """\
#include <pthread.h>
#include <stdio.h>
#include "remaplab.h"
static void *worker(void *arg) { return arg; }
int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	pthread_join(t, NULL);
	printf("hello %d\\n", VALUE);
	return 0;
}
"""
MACHINE = {"x86_64": "x86-64", "arm64": "aarch64"}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "hello.c"
    path.write_text(PROGRAM)
    return path


def test_header_is_on_the_include_path() -> None:
    assert (INCLUDE / "remaplab.h").is_file()


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_static_binary_per_arch(arch: str, source: Path, tmp_cache: Path) -> None:
    binary = compile_static(arch, source, ["-DVALUE=7"])
    desc = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True).stdout
    assert MACHINE[arch] in desc and "statically linked" in desc, desc
    if arch == "x86_64":
        assert subprocess.run([binary], capture_output=True, text=True).stdout == "hello 7\n"


def test_cached_by_content_and_flags(source: Path, tmp_cache: Path) -> None:
    first = compile_static("x86_64", source, ["-DVALUE=1"])
    assert compile_static("x86_64", source, ["-DVALUE=1"]) == first
    assert compile_static("x86_64", source, ["-DVALUE=2"]) != first
    source.write_text(PROGRAM + "/* changed */\n")
    assert compile_static("x86_64", source, ["-DVALUE=1"]) == first  # comment: same program
    source.write_text(PROGRAM.replace("hello", "bye"))
    assert compile_static("x86_64", source, ["-DVALUE=1"]) != first


def test_compile_error_quotes_the_compiler(tmp_path: Path, tmp_cache: Path) -> None:
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return undeclared_thing; }\n")
    with pytest.raises(LabError) as err:
        compile_static("arm64", bad)
    assert "compiling bad.c for arm64 (aarch64-linux-gnu-gcc) failed" in str(err.value)
    assert "undeclared_thing" in str(err.value)


def test_cli_copies_the_binary_and_exits_125_on_errors(
    source: Path, tmp_path: Path, tmp_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hello-arm64"
    assert main(["cc", "--arch", "arm64", "-o", str(out), str(source), "--", "-DVALUE=3"]) == 0
    assert out.stat().st_mode & 0o111
    assert main(["cc", "--arch", "arm64", "-o", str(out), str(source)]) == EXIT_LAB
    err = capsys.readouterr().err
    assert "VALUE" in err and "undeclared" in err and "Traceback" not in err
    assert main(["cc", "--arch", "sparc", str(source)]) == EXIT_LAB
    assert main(["cc", "--arch", "x86_64", str(tmp_path / "missing.c")]) == EXIT_LAB
