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


def test_a_missing_header_is_named_not_buried_in_preprocessed_text(
    tmp_path: Path, tmp_cache: Path
) -> None:
    """The preprocessing step's stdout is its result: an error quotes stderr alone (it used to
    quote 4,000 characters of expanded glibc headers and cut off the fatal error)."""
    bad = tmp_path / "m.c"
    bad.write_text('#include <stdio.h>\n#include <sys/wait.h>\n#include "nothere.h"\n')
    with pytest.raises(LabError) as err:
        compile_static("x86_64", bad)
    assert "fatal error: nothere.h: No such file or directory" in str(err.value)
    assert "extern" not in str(err.value)


def _tree(tmp_path: Path) -> Path:
    """main.c including a header beside it, one in a subfolder, one above it (a space in its
    name), the lab's remaplab.h and system headers."""
    (tmp_path / "proj" / "sub").mkdir(parents=True)
    (tmp_path / "common").mkdir()
    (tmp_path / "proj" / "sub" / "a.h").write_text('#include "../b.h"\n#define A 1\n')
    (tmp_path / "proj" / "b.h").write_text("#define B 2\n")
    (tmp_path / "common" / "c d.h").write_text("#define C 3\n")
    main_c = tmp_path / "proj" / "main.c"
    main_c.write_text(
        '#include <stdio.h>\n#include "remaplab.h"\n#include "sub/a.h"\n'
        '#include "../common/c d.h"\nint main(void) { printf("%d\\n", A + B + C); return 0; }\n'
    )
    return main_c


def test_local_headers_are_what_a_copy_needs(tmp_path: Path) -> None:
    from lab.cc import local_headers

    main_c = _tree(tmp_path)
    assert sorted(h.resolve() for h in local_headers("arm64", main_c)) == sorted(
        [
            tmp_path / "common" / "c d.h",
            tmp_path / "proj" / "b.h",
            tmp_path / "proj" / "sub" / "a.h",
        ]
    )


def test_a_copy_with_its_headers_compiles_where_the_originals_are_gone(
    tmp_path: Path, tmp_cache: Path
) -> None:
    import shutil

    from lab.cc import copy_with_headers

    main_c = _tree(tmp_path / "orig")
    dest = tmp_path / "bundle"
    rel = copy_with_headers("x86_64", main_c, dest, "repro.c")
    assert rel == Path("_", "repro.c")  # one level above its folder: one "_"
    shutil.rmtree(tmp_path / "orig")
    binary = compile_static("x86_64", dest / rel)
    assert subprocess.run([binary], capture_output=True, text=True).stdout == "6\n"


def test_what_cannot_be_a_c_source_is_refused_in_one_line(tmp_path: Path) -> None:
    from lab.cc import check_source

    elf = tmp_path / "prog"
    elf.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(64))
    data = tmp_path / "data.c"
    data.write_bytes(b"int x;\n\x00\x01")
    for path, said in (
        (tmp_path, "a folder, not a C source file"),
        (tmp_path / "none.c", "no such C source file"),
        (Path("/dev/null"), "not a regular file"),
        (elf, "an ELF file, not a C source file"),
        (data, "binary data, not a C source file"),
    ):
        with pytest.raises(LabError, match=said):
            check_source(path)


def test_odd_header_names_symlinks_and_include_folders_are_copied_where_gcc_found_them(
    tmp_path: Path, tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """make's escapes in gcc -MM ($$, \\#, \\ ), a symlinked header (copied where the include
    found it, not where it points), a relative -I folder, and a missing header (left out, not
    taken from the working folder)."""
    from lab.cc import copy_with_headers

    src, real, inc = tmp_path / "src", tmp_path / "real", tmp_path / "inc"
    for folder in (src, real, inc):
        folder.mkdir()
    names = ["d$x.h", "up $HOME.h", "h#x.h"]
    for name in names:
        (src / name).write_text(f"/* {name} */\n")
    (real / "link.h").write_text("#define R 1\n")
    (src / "link.h").symlink_to("../real/link.h")
    (inc / "i.h").write_text("#define I 2\n")
    (tmp_path / "gone.h").write_text("#error not this one\n")  # in the working folder only
    includes = "".join(f'#include "{n}"\n' for n in [*names, "link.h", "i.h", "gone.h"])
    (src / "main.c").write_text(includes + "int main(void) { return R + I; }\n")
    monkeypatch.chdir(tmp_path)
    rel = copy_with_headers("x86_64", Path("src/main.c"), tmp_path / "out", "repro.c", ["-Iinc"])
    copied = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.*"))
    assert rel == Path("_", "repro.c")
    assert copied == sorted(["_/repro.c", "_/link.h", "inc/i.h", *(f"_/{n}" for n in names)]), (
        copied
    )


def test_a_header_named_like_the_copy_keeps_the_sources_own_name(tmp_path: Path) -> None:
    from lab.cc import copy_with_headers

    (tmp_path / "repro.c").write_text("int x(void) { return 0; }\n")
    (tmp_path / "main.c").write_text('#include "repro.c"\nint main(void) { return x(); }\n')
    rel = copy_with_headers("x86_64", tmp_path / "main.c", tmp_path / "out", "repro.c")
    assert rel == Path("main.c")
    assert "include" in (tmp_path / "out" / "main.c").read_text()
    assert "return 0" in (tmp_path / "out" / "repro.c").read_text()


def test_a_long_error_keeps_its_first_and_last_messages() -> None:
    """Warnings first, the linker's undefined reference last: both ends are quoted."""
    from lab.cc import MESSAGES_MAX, _bounded

    text = "t.c:1: error: first\n" + "t.c:2: warning: noise\n" * 500 + "undefined reference to `f'"
    kept = _bounded(text)
    assert len(kept) <= MESSAGES_MAX + 10
    assert kept.startswith("t.c:1: error: first") and kept.endswith("undefined reference to `f'")


def test_a_scenario_read_through_a_symlinked_folder_bundles_its_programs_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """linkscen -> real/scen; its program ../driver/prog.c includes common.h: both land in the
    bundle where the scenario's relative path puts them (not lost to a resolved path)."""
    from lab.scenario.bundle import _copy_sources
    from lab.scenario.load import load_file

    (tmp_path / "real" / "scen").mkdir(parents=True)
    (tmp_path / "real" / "driver").mkdir()
    (tmp_path / "linkscen").symlink_to("real/scen")
    (tmp_path / "real" / "driver" / "common.h").write_text("#define S 3\n")
    (tmp_path / "real" / "driver" / "prog.c").write_text(
        '#include "common.h"\nint main(void) { return S; }\n'
    )
    (tmp_path / "real" / "scen" / "sl.yaml").write_text(
        "name: sl\ndescription: d\narches: [x86_64]\n"
        "steps:\n  - program: {source: ../driver/prog.c}\n"
    )
    monkeypatch.chdir(tmp_path)
    info = _copy_sources(load_file(Path("linkscen/sl.yaml")), tmp_path / "bundle", "x86_64")
    base = tmp_path / "bundle" / info["sources_base"]
    assert (base / "../driver/prog.c").is_file() and (base / "../driver/common.h").is_file()


def test_a_scenario_naming_its_module_by_an_absolute_path_still_gets_a_bundle(
    tmp_path: Path,
) -> None:
    """Absolute sources are read where they are on a rerun: not copied (copying one used to
    copy the folder onto itself and end the run with an internal error)."""
    from lab.scenario.bundle import _copy_sources
    from lab.scenario.load import load_file

    driver = tmp_path / "driver"
    driver.mkdir()
    (driver / "Kbuild").write_text("obj-m := d.o\n")
    (tmp_path / "s.yaml").write_text(
        f"name: s\ndescription: d\narches: [x86_64]\nmodules:\n  - source: {driver}\n"
        "steps:\n  - run: {command: 'true'}\n"
    )
    info = _copy_sources(load_file(tmp_path / "s.yaml"), tmp_path / "bundle", "x86_64")
    assert info["sources_base"] == "sources" and (driver / "Kbuild").is_file()
