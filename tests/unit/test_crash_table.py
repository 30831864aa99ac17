"""The crash-pattern table is checked when it loads: every error names its row."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

import pytest

from lab.crash.table import TABLE, TableError, parse, table

GOOD = TABLE.read_text()
ROW = '\n[[pattern]]\nstart = "FOO: x"\nkind = "BUG"\ntitle = "FOO"\n'


def test_shipped_table_loads() -> None:
    tab = table()
    assert len(tab.patterns) > 50 and tab.frames.strip_prefixes
    assert all(p.skip is not None for p in tab.patterns)


def test_a_good_extra_row_loads() -> None:
    assert parse(GOOD + ROW).patterns[-1].title == "FOO"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (ROW + 'titel = "x"\n', "unknown key 'titel'"),
        (ROW + 'extractor = "stal"\n', "unknown extractor 'stal'"),
        (ROW.replace('title = "FOO"', 'title = "FOO in {func}"'), "title names {func}"),
        (ROW.replace('"FOO: x"', '"FOO: ("'), "bad regex"),
        (ROW + "cut = 1\n", "cut must be a bool"),
        (ROW.replace('kind = "BUG"\n', ""), "missing key 'kind'"),
        (ROW + 'stack = ["{{NOPE}}"]\n', "unknown macro"),
    ],
)
def test_bad_rows_are_named(row: str, message: str) -> None:
    with pytest.raises(TableError) as err:
        parse(GOOD + row)
    assert message in str(err.value)
    assert "(start 'FOO" in str(err.value)


def test_unknown_section_and_key() -> None:
    with pytest.raises(TableError, match="unknown table"):
        parse(GOOD + "\n[extra]\nx = 1\n")
    with pytest.raises(TableError, match=r"\[console\]: unknown key 'colour'"):
        parse(GOOD.replace("[console]\n", "[console]\ncolour = 'red'\n", 1))


def test_warm_parses_in_a_thread_once_and_a_broken_table_stays_the_caller_s_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mod = importlib.import_module("lab.crash.table")  # the package's `table` is the function
    raised: list[object] = []
    monkeypatch.setattr(threading, "excepthook", raised.append)

    def warm_and_wait() -> None:
        mod.warm()
        for t in threading.enumerate():
            if t.name == "remaplab-crash-table":
                t.join(5)

    broken = tmp_path / "crash_patterns.toml"
    broken.write_text("[[pattern]\n")
    mod._table.cache_clear()
    monkeypatch.setattr(mod, "TABLE", broken)
    try:
        warm_and_wait()
        assert raised == [] and mod._table.cache_info().currsize == 0  # quiet, nothing cached
        with pytest.raises(TableError, match=r"crash_patterns\.toml"):
            table()  # the caller gets the error, naming the file
        monkeypatch.setattr(mod, "TABLE", TABLE)
        warm_and_wait()
        assert raised == [] and mod._table.cache_info().currsize == 1  # the thread parsed it
        hits = mod._table.cache_info().hits
        assert table() is table() and mod._table.cache_info().hits == hits + 2
    finally:
        mod._table.cache_clear()
