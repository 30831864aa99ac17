"""remaplab run --shard K/N end to end, with no VM (every scenario is for arm64 and runs on
x86_64: skipped before any kernel is prepared): the shards' report.json files name their
shard, hold disjoint runs, and report merge puts the whole suite back together."""

from __future__ import annotations

import json
import subprocess
import sys
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


def _foreign_repo(tmp_path: Path) -> Path:
    """A driver author's repository: pyproject.toml, scenarios/, a committed .test_durations
    whose one heavy item decides the split."""
    repo = tmp_path / "myrepo"
    (repo / "scenarios").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    for name in NAMES:
        (repo / "scenarios" / f"{name}.yaml").write_text(SCENARIO.format(name=name))
    stored = {f"scenarios/{n}.yaml::{n}[arm64]": 1.0 for n in NAMES}
    stored["scenarios/s3.yaml::s3[arm64]"] = 100.0
    (repo / ".test_durations").write_text(json.dumps(stored))
    return repo


def test_a_foreign_repositorys_durations_decide_its_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From any working folder: node ids and .test_durations are the repository's (pytest's
    rootdir), as pytest --splits reads them; --list shows the shard's own runs."""
    repo = _foreign_repo(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    listed = {}
    for k in (1, 2):
        argv = ["run", "--scenarios", str(repo / "scenarios"), "--arch", "arm64",
                "--shard", f"{k}/2", "--list"]  # fmt: skip
        assert main(argv) == 0
        captured = capsys.readouterr()
        assert f"(durations: {repo / '.test_durations'})" in captured.err, captured.err
        listed[k] = sorted(line.split()[0] for line in captured.out.splitlines())
    assert listed[1] == ["s3"] or listed[2] == ["s3"], listed  # the heavy one alone
    assert sorted(listed[1] + listed[2]) == NAMES


def test_a_missing_durations_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _foreign_repo(tmp_path)
    argv = ["run", "--scenarios", str(repo / "scenarios"), "--shard", "1/2",
            "--durations", str(tmp_path / "nope.json"), "--list"]  # fmt: skip
    assert main(argv) == 125
    assert f"--durations {tmp_path / 'nope.json'}: no such file" in capsys.readouterr().err


@pytest.mark.parametrize("k", [1, 2])
def test_pytest_in_a_foreign_repository_splits_as_remaplab_run(
    tmp_path: Path, k: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repository's pyproject names no splitting algorithm: the plugin makes pytest-split
    use least_duration for a session of scenarios, so both tools give the same shards."""
    repo = _foreign_repo(tmp_path)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--splits",
            "2",
            "--group",
            str(k),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "scenarios",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    ids = [ln.split("::")[1] for ln in res.stdout.splitlines() if "::" in ln]
    pairs = [(i.split("[")[0], i.split("[")[1].rstrip("]")) for i in ids]
    by_pytest = sorted(p for p in pairs if p[1] == "arm64")  # --list: what runs, not skips
    monkeypatch.chdir(repo)
    assert main(["run", "--scenarios", "scenarios", "--shard", f"{k}/2", "--list"]) == 0
    by_remaplab = sorted(
        (line.split()[0], arch)
        for line in capsys.readouterr().out.splitlines()
        for arch in line.split()[1].split(",")
    )
    assert by_pytest == by_remaplab, (by_pytest, by_remaplab)


def test_the_rootdir_is_the_folder_with_pytests_own_configuration(tmp_path: Path) -> None:
    """A monorepo: the pytest configuration at the top, a helper pyproject.toml without one
    beside the scenarios; node ids are relative to the top, as pytest makes them."""
    from lab.shard import shard_root

    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = '-ra'\n")
    sub = tmp_path / "drivers" / "foo"
    (sub / "scenarios").mkdir(parents=True)
    (sub / "pyproject.toml").write_text("[project]\nname = 'foo'\n")
    assert shard_root(sub / "scenarios") == tmp_path
    (sub / "pytest.ini").write_text("")  # pytest.ini counts even when empty
    assert shard_root(sub / "scenarios") == sub
    lone = tmp_path.parent / f"{tmp_path.name}-lone"
    (lone / "scenarios").mkdir(parents=True)
    (lone / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert shard_root(lone / "scenarios") == lone  # no configuration anywhere: pytest 8's fallback
