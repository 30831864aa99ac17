"""remaplab run --shard K/N end to end, with no VM (every scenario is for arm64 and runs on
x86_64: skipped before any kernel is prepared): the shards' report.json files name their
shard, hold disjoint runs, and report merge puts the whole suite back together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.cli import main

SCENARIO = "name: {name}\ndescription: d\narches: [arm64]\nsteps:\n  - run: {{command: 'true'}}\n"
NAMES = [f"s{i}" for i in range(5)]


def test_shards_then_merge(
    tmp_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for name in NAMES:
        (folder / f"{name}.yaml").write_text(SCENARIO.format(name=name))
    durations = tmp_path / "durations.json"
    stored = {f"scenarios/{n}.yaml::{n}[x86_64]": 1.0 for n in NAMES}
    durations.write_text(json.dumps(stored | {"scenarios/s0.yaml::s0[x86_64]": 100.0}))
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []
    for k in (1, 2):
        out = tmp_path / f"shard-{k}"
        argv = ["run", "--scenarios", str(folder), "--arch", "x86_64", "--shard", f"{k}/2",
                "--durations", str(durations), "--out", str(out)]  # fmt: skip
        assert main(argv) == 1  # every run skipped: "nothing ran"
        report = json.loads((out / "report.json").read_text())
        assert report["shard"] == f"{k}/2"
        seen += [r["scenario"] for r in report["results"]]
    assert sorted(seen) == NAMES
    assert json.loads((tmp_path / "shard-1" / "report.json").read_text())["shard_runs"] == 1
    merged = tmp_path / "merged"
    assert main(["report", "merge", "shard-1", "shard-2", "--out", str(merged)]) == 0
    assert json.loads((merged / "report.json").read_text())["summary"]["skipped"] == 5


def test_an_empty_shard_does_nothing(tmp_cache: Path, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SCENARIO.format(name="a"))
    argv = ["run", "--scenarios", str(tmp_path), "--arch", "x86_64", "--shard", "2/2",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 0
    assert not (tmp_path / "out").exists()


def test_a_bad_shard_is_125(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(SCENARIO.format(name="a"))
    assert main(["run", "--scenarios", str(tmp_path), "--shard", "3/2"]) == 125
    assert "--shard 3/2" in capsys.readouterr().err
