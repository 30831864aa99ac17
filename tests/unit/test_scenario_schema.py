"""Scenario validation: every error names file:line and the field, before anything boots."""

from pathlib import Path

import pytest

from lab.scenario.load import ScenarioError, load_dir, load_file, load_text, select

REPO = Path(__file__).resolve().parents[2]
GOOD = """name: demo
description: a demo
steps:
  - map: {backing: contig, mapping: remap_runs, pages: 8}
  - check: {of: m, physically_contiguous: true}
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as exc:
        load_text(text, Path("scenarios/demo.yaml"))
    return str(exc.value).splitlines()


def test_good_scenario_and_defaults() -> None:
    s = load_text(GOOD, Path("demo.yaml"))
    assert s.arches == ("x86_64", "arm64")
    assert s.boot.memory == "1G" and s.expect.kernel == "clean"
    assert [step.kind for step in s.steps] == ["map", "check"]


def test_every_library_scenario_is_valid() -> None:
    loaded = load_dir(REPO / "scenarios")
    assert len(loaded) >= 30
    names = {item.scenario.name for item in loaded}
    for backing in ("pages", "contig", "vmalloc"):
        for mapping in ("remap", "remap_runs", "insert", "fault", "vmalloc_range", "insert_one"):
            assert f"combo-{backing}-{mapping}" in names


def test_unknown_field_names_line() -> None:
    text = GOOD.replace("pages: 8}", "pages: 8, colour: red}")
    assert errors(text) == ["scenarios/demo.yaml:4: steps[0].map.colour: unknown field"]


def test_unknown_step_kind() -> None:
    text = GOOD + "  - explode: {now: true}\n"
    (line,) = [e for e in errors(text) if "explode" in e]
    assert line == "scenarios/demo.yaml:6: steps[2].explode: unknown field"


def test_wrong_type_and_enum() -> None:
    text = GOOD.replace("pages: 8", "pages: many").replace("remap_runs", "remap-runs")
    errs = errors(text)
    assert any(e.startswith("scenarios/demo.yaml:4: steps[0].map.pages:") for e in errs)
    assert any("steps[0].map.mapping" in e and "'remap-runs'" in e for e in errs)


def test_bad_arch_and_memory() -> None:
    text = GOOD + "arches: [x86_64, riscv]\nboot: {memory: lots}\n"
    errs = errors(text)
    assert any(e.startswith("scenarios/demo.yaml:6: arches[1]:") for e in errs)
    assert any(e.startswith("scenarios/demo.yaml:7: boot.memory:") for e in errs)


def test_malformed_yaml() -> None:
    (err,) = errors("name: [demo\ndescription: x\n")
    assert err.startswith("scenarios/demo.yaml:") and "malformed YAML" in err


def test_not_a_mapping_and_missing_fields() -> None:
    assert errors("- 1\n- 2\n")[0].startswith("scenarios/demo.yaml:1: a scenario is a YAML mapping")
    errs = errors("name: demo\n")
    assert "scenarios/demo.yaml:1: description: Field required" in errs


def test_step_must_be_one_kind() -> None:
    text = GOOD + '  - {run: {command: "true"}, release: {of: m}}\n'
    assert any("exactly one of" in e for e in errors(text))


def test_name_must_match_file(tmp_path: Path) -> None:
    f = tmp_path / "other.yaml"
    f.write_text(GOOD)
    with pytest.raises(ScenarioError, match="must equal the file name 'other'"):
        load_file(f)


def test_unknown_scenario_name() -> None:
    loaded = load_dir(REPO / "scenarios")
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'"):
        select(loaded, ["nope"])


def test_requirements_are_checked() -> None:
    text = GOOD + "requires: [cma, debug_vm]\nrequires_config: [CONFIG_COMEDI_TEST, comedi]\n"
    (err,) = errors(text)
    assert err.startswith("scenarios/demo.yaml:7: requires_config[1]:")
    (err,) = errors(GOOD + "requires: [kcsan]\n")
    assert err.startswith("scenarios/demo.yaml:6: requires[0]:") and "'kcsan'" in err


def test_regexes_are_checked_before_anything_boots() -> None:
    text = GOOD + "expect:\n  kernel: {kind: 'KASAN(', title: ok}\n"
    (err,) = errors(text)
    assert err.startswith("scenarios/demo.yaml:7: expect.kernel.kind:")
    assert "not a valid regular expression" in err
