"""remaplab run --shard K/N makes pytest-split's partition (pytest --splits N --group K) of
the same scenario items, by the same stored durations; shards are disjoint and cover the suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.shard import Shard, load_durations, parse_shard, shard_pairs, update_durations

SCENARIO = "name: {name}\ndescription: d\nsteps:\n  - run: {{command: 'true'}}\n"
NAMES = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta"]
ARCHES = ["x86_64", "arm64"]


def project(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "scenarios").mkdir()
    for name in NAMES:
        (tmp_path / "scenarios" / f"{name}.yaml").write_text(SCENARIO.format(name=name))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    durations = {
        f"scenarios/{n}.yaml::{n}[{a}]": float(10 * i + (5 if a == "arm64" else 0))
        for i, n in enumerate(NAMES)
        for a in ARCHES
        if n != "eta"  # no stored duration: counts as the average
    }
    durations["scenarios/gone.yaml::gone[x86_64]"] = 999.0  # a test that no longer exists
    durations["scenarios/beta.yaml::beta[x86_64]"] = 10.0  # ties with alpha[arm64]... by name
    path = tmp_path / ".test_durations"
    path.write_text(json.dumps(durations))
    return tmp_path / "scenarios", path


def pytest_group(root: Path, durations: Path, splits: int, group: int) -> list[str]:
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--splits", str(splits), "--group", str(group), "--durations-path", str(durations),
         "--splitting-algorithm", "least_duration",
         *(f"--arch={a}" for a in ARCHES)],
        capture_output=True, text=True, cwd=root, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    return [line for line in res.stdout.splitlines() if "::" in line]


@pytest.mark.parametrize("splits", [2, 3])
def test_same_partition_as_pytest_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, splits: int
) -> None:
    folder, durations = project(tmp_path)
    monkeypatch.chdir(tmp_path)
    paths = [(folder / f"{n}.yaml", n) for n in NAMES]
    seen: list[tuple[str, str]] = []
    for group in range(1, splits + 1):
        ours = shard_pairs(paths, ARCHES, Shard(group, splits), durations)
        theirs = pytest_group(tmp_path, durations, splits, group)
        assert [f"scenarios/{n}.yaml::{n}[{a}]" for n, a in ours] == theirs
        seen += ours
    assert sorted(seen) == sorted((n, a) for n in NAMES for a in ARCHES)  # disjoint, complete


def test_without_durations_every_item_counts_the_same(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    paths = [(folder / f"{n}.yaml", n) for n in NAMES]
    sizes = [len(shard_pairs(paths, ARCHES, Shard(k, 3), tmp_path / "none")) for k in (1, 2, 3)]
    assert sorted(sizes) == [4, 5, 5]


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "x", "1-3", ""])
def test_bad_shard_is_one_clear_error(text: str) -> None:
    with pytest.raises(LabError, match="--shard"):
        parse_shard(text)


def test_parse_shard() -> None:
    assert parse_shard(" 2/5 ") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"


def test_update_durations_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / ".test_durations"
    path.write_text(json.dumps({"tests/unit/test_x.py::test_a": 0.5, "s.yaml::s[arm64]": 3.0}))
    assert update_durations(path, [("s.yaml::s[arm64]", 7.25), ("s.yaml::s[x86_64]", 1.0)]) == 2
    assert load_durations(path) == {
        "tests/unit/test_x.py::test_a": 0.5,
        "s.yaml::s[arm64]": 7.25,
        "s.yaml::s[x86_64]": 1.0,
    }
    path.write_text("not json")
    with pytest.raises(LabError, match="not a durations file"):
        load_durations(path)


@pytest.mark.parametrize(
    "text",
    ['{"a::b": "soon"}', '{"a::b": -1}', '{"a::b": NaN}', '{"a::b": null}', "[[1, 2, 3]]", "7"],
)
def test_a_wrong_durations_file_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / ".test_durations"
    path.write_text(text)
    with pytest.raises(LabError, match=f"^{path}: not a durations file"):
        load_durations(path)


def test_durations_from_a_device_are_refused() -> None:
    with pytest.raises(LabError, match="/dev/zero: cannot read: not a regular file"):
        load_durations(Path("/dev/zero"))


def test_committed_durations_name_existing_scenario_items() -> None:
    """.test_durations (make durations) is keyed by the pytest ids of today's scenarios."""
    from lab.paths import REPO

    durations = load_durations(REPO / ".test_durations")
    scenario_ids = [k for k in durations if k.startswith("scenarios/")]
    assert scenario_ids, "no scenario durations in .test_durations: run make durations"
    names = {p.stem for p in (REPO / "scenarios").glob("*.yaml")}
    stale = [k for k in scenario_ids if k.split("/")[1].split(".yaml")[0] not in names]
    assert len(stale) <= len(scenario_ids) // 10, f"stale durations: {stale}"
