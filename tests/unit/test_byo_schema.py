"""Scenario format for code the lab did not write: modules, programs, device maps, and the
load-time checks that need the whole scenario (names held, multimap-only checks, files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.scenario.load import ScenarioError, load_file, load_text
from lab.scenario.schema import size_bytes

HEAD = "name: d\ndescription: d\n"


def errors(text: str, base: Path | None = None) -> str:
    with pytest.raises(ScenarioError) as exc:
        load_text(HEAD + text, Path("s/d.yaml"), base)
    return str(exc.value)


def test_sizes() -> None:
    assert [size_bytes(v) for v in (4096, "4096", "64K", "1M", "2G")] == [
        4096,
        4096,
        65536,
        1 << 20,
        2 << 30,
    ]


def test_device_map_and_program_load() -> None:
    s = load_text(
        HEAD
        + "modules: [{source: drv, params: {n: 4}}, {name: comedi_test}]\n"
        + "steps:\n"
        + "  - map: {device: /dev/x, length: 64K, offset: 4096, actions: [fork, close]}\n"
        + "  - check: {of: m, physical: true, distinct_pages: 16}\n"
        + "  - program: {source: t.c, args: [a, b], hold: h}\n"
        + "  - check: {of: h}\n"
        + "  - release: {of: h}\n",
        Path("d.yaml"),
    )
    assert s.steps[0].body.foreign and size_bytes(s.steps[0].body.length) == 65536
    assert [m.source or m.name for m in s.modules] == ["drv", "comedi_test"]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("map: {device: /dev/x}", "a device map needs a length"),
        ("map: {device: /dev/x, length: 1000}", "multiple of 4096"),
        ("map: {device: /dev/x, length: 4K, backing: contig}", "backing: for multimap maps"),
        ("map: {device: /dev/x, length: 4K, actions: [readback]}", "a device map takes"),
        ("map: {length: 64K}", "a page count"),
        ("map: {device: x, length: 4K}", "String should match pattern"),
    ],
)
def test_bad_device_maps(step: str, message: str) -> None:
    assert message in errors(f"steps:\n  - {step}\n")


def test_a_module_is_a_source_or_a_name() -> None:
    assert "either {source: DIR} or {name: MODULE}" in errors(
        "modules: [{source: a, name: b}]\nsteps: [{run: {command: x}}]\n"
    )


def test_multimap_only_checks_are_refused_on_foreign_mappings() -> None:
    text = (
        "steps:\n  - map: {device: /dev/x, length: 4K, name: d}\n  - check: {of: d, source: cma}\n"
    )
    assert "s/d.yaml:5: steps[1].check.source: source is for multimap's own mappings" in errors(
        text
    )
    ok = "steps:\n  - map: {device: /dev/x, length: 4K, name: d}\n  - check: {of: d}\n"
    load_text(HEAD + ok, Path("d.yaml"))


def test_names_must_be_held() -> None:
    text = "steps:\n  - map: {pages: 4}\n  - release: {of: m}\n  - check: {of: m}\n"
    assert "s/d.yaml:6: steps[2].check.of: no mapping named 'm' is held here" in errors(text)
    assert "steps[0].release.of" in errors("steps:\n  - release: {of: zz}\n")


def test_multimap_map_needs_multimap() -> None:
    text = "module: {load: false}\nsteps:\n  - map: {pages: 4}\n"
    assert "module: {load: false}" in errors(text)


def test_files_are_resolved_from_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "drv").mkdir()
    (tmp_path / "drv" / "Kbuild").write_text("obj-m += drv.o\n")
    (tmp_path / "t.c").write_text("int main(void) { return 0; }\n")
    good = tmp_path / "good.yaml"
    good.write_text(
        "name: good\ndescription: d\nmodules: [{source: drv}]\nsteps: [{program: {source: t.c}}]\n"
    )
    assert load_file(good).scenario.modules[0].source == "drv"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\ndescription: d\nmodules: [{source: nodir}]\n"
        "steps: [{program: {source: none.c}}]\n"
    )
    with pytest.raises(ScenarioError) as exc:
        load_file(bad)
    lines = str(exc.value).splitlines()
    assert lines[0] == f"{bad}:3: modules[0].source: no such folder: {tmp_path / 'nodir'}"
    assert lines[1] == f"{bad}:4: steps[0].program.source: no such file: {tmp_path / 'none.c'}"


@pytest.mark.parametrize("makefile", ["Kbuild", "Makefile", None])
def test_a_module_folder_needs_kbuild_or_a_makefile(tmp_path: Path, makefile: str | None) -> None:
    """Refused at load time, the line named: not a build failure once the VMs are up."""
    (tmp_path / "drv").mkdir()
    (tmp_path / "drv" / "drv.c").write_text("/* no build file beside it */\n")
    if makefile is not None:
        (tmp_path / "drv" / makefile).write_text("obj-m += drv.o\n")
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ndescription: d\nmodules:\n  - source: drv\nsteps: [{run: {command: x}}]\n"
    )
    if makefile is not None:
        assert load_file(path).scenario.modules[0].source == "drv"
        return
    with pytest.raises(ScenarioError) as exc:
        load_file(path)
    assert str(exc.value) == (
        f"{path}:4: modules[0].source: {tmp_path / 'drv'} is not a module folder "
        "(no Kbuild or Makefile)"
    )
