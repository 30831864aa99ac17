"""The pytest plugin collects scenario files in any project: the ini option's folders, else
folders named scenarios; the options are there; the plugin is registered once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCENARIO = (
    "name: {name}\ndescription: d\narches: [x86_64, arm64]\nsteps:\n  - run: {{command: 'true'}}\n"
)


def collect(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
    )


def test_ini_option_names_the_scenario_folders(tmp_path: Path) -> None:
    (tmp_path / "checks" / "deep").mkdir(parents=True)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "checks" / "deep" / "mine.yaml").write_text(SCENARIO.format(name="mine"))
    (tmp_path / "scenarios" / "other.yaml").write_text(SCENARIO.format(name="other"))
    (tmp_path / "pytest.ini").write_text("[pytest]\nremaplab_scenarios = checks\n")
    res = collect(tmp_path, "--arch", "arm64")
    assert "checks/deep/mine.yaml::mine[arm64]" in res.stdout, res.stdout + res.stderr
    assert "other" not in res.stdout and "1 test collected" in res.stdout


def test_default_is_folders_named_scenarios(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "scenarios" / "a.yaml").write_text(SCENARIO.format(name="a"))
    (tmp_path / "data" / "b.yaml").write_text("not: a scenario\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    res = collect(tmp_path)
    assert "scenarios/a.yaml::a[x86_64]" in res.stdout and "a[arm64]" in res.stdout, res.stdout
    assert "2 tests collected" in res.stdout


def test_a_bad_scenario_is_a_collection_error_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "bad.yaml").write_text(
        "name: bad\ndescription: d\nsteps:\n  - map: {mapping: remapp}\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    res = collect(tmp_path)
    assert res.returncode != 0
    assert "bad.yaml:4" in res.stdout and "remapp" in res.stdout, res.stdout


def test_options_and_single_registration(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    for option in ("--arch", "--kernel", "--kdir", "--lab-kernel", "--keep-vm"):
        assert option in res.stdout
    assert "remaplab_scenarios" in res.stdout
    plugins = subprocess.run(
        [sys.executable, "-m", "pytest", "--trace-config", "--co", "-q"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2] / "tests" / "unit" / "data",
    ).stdout
    assert plugins.count("lab/pytest_plugin.py") == 1, plugins


def test_a_skipped_scenario_is_reported_at_its_file(tmp_path: Path) -> None:
    """The skip names the scenario file (as a skipif mark does), not a line of the plugin."""
    (tmp_path / "scenarios").mkdir()
    text = SCENARIO.format(name="armonly").replace("[x86_64, arm64]", "[arm64]")
    (tmp_path / "scenarios" / "armonly.yaml").write_text(text)
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--arch", "x86_64"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert "SKIPPED [1] scenarios/armonly.yaml:1: scenario is for arm64" in res.stdout, res.stdout
    assert "pytest_plugin.py" not in res.stdout


def test_a_scenario_file_named_on_the_command_line_is_collected(tmp_path: Path) -> None:
    """Outside the scenario folders, a YAML file named explicitly is still a scenario; other
    YAML files there are not."""
    (tmp_path / "negative").mkdir()
    (tmp_path / "negative" / "bug1.yaml").write_text(SCENARIO.format(name="bug1"))
    (tmp_path / "negative" / "bug2.yaml").write_text(SCENARIO.format(name="bug2"))
    res = collect(tmp_path, "--arch", "x86_64", "negative/bug1.yaml")
    assert "negative/bug1.yaml::bug1[x86_64]" in res.stdout, res.stdout + res.stderr
    assert "bug2" not in res.stdout
    assert "no tests collected" in collect(tmp_path, "--arch", "x86_64", "negative").stdout
