"""remaplab report merge: shards' report.json (or JUnit XML, remaplab's or pytest's) become one
summary and one report.json/junit.xml; exit 1 when any merged result did not pass or skip."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.cli import main
from lab.scenario.report import merge_results, read_junit, write_json, write_junit
from lab.scenario.result import Outcome, Result, StepRecord


def shard(folder: Path, results: list[Result], shard: str, wall: float) -> Path:
    folder.mkdir(parents=True)
    write_json(results, folder / "report.json", {"arches": ["x86_64", "arm64"], "wall_s": wall,
                                                 "shard": shard})  # fmt: skip
    write_junit(results, folder / "junit.xml")
    return folder


def good(name: str, arch: str, outcome: Outcome = Outcome.PASSED) -> Result:
    steps = [StepRecord(0, "run", True, 0.1, "ok", {"status": 0})]
    return Result(name, arch, outcome, seconds=2.0, steps=steps, log_dir=f"r/{name}-{arch}")


def test_merge_two_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = shard(
        tmp_path / "s1", [good("a", "x86_64"), good("b", "arm64", Outcome.SKIPPED)], "1/2", 30
    )
    b = shard(tmp_path / "s2", [good("a", "arm64"), good("c", "x86_64")], "2/2", 40.5)
    out = tmp_path / "merged"
    assert main(["report", "merge", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 runs merged from 2 reports" in printed and "3 passed, 1 skipped" in printed
    data = json.loads((out / "report.json").read_text())
    assert data["summary"]["passed"] == 3 and data["wall_s"] == 40.5
    assert [s["shard"] for s in data["merged_from"]] == ["1/2", "2/2"]
    assert data["results"][0]["steps"][0]["evidence"] == {"status": 0}  # nothing lost
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.get("tests") == "4" and suite.get("skipped") == "1"


def test_a_failure_in_any_shard_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crash = good("a", "arm64", Outcome.CRASH)
    crash.message = "BUG: Bad page state"
    a = shard(tmp_path / "s1", [good("a", "x86_64")], "1/2", 10)
    b = shard(tmp_path / "s2", [crash], "2/2", 10)
    assert main(["report", "merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "kernel crash: a [arm64]: BUG: Bad page state" in err and "r/a-arm64" in err
    suite = ET.parse(tmp_path / "m" / "junit.xml").getroot()
    assert suite.get("errors") == "1"


def test_a_result_in_two_shards_is_kept_once_the_bad_one(tmp_path: Path) -> None:
    a = shard(tmp_path / "s1", [good("a", "x86_64")], "1/2", 10)
    b = shard(tmp_path / "s2", [good("a", "x86_64", Outcome.TIMEOUT)], "2/2", 10)
    merged = merge_results([a, b])
    assert [r.outcome for r in merged.results] == [Outcome.TIMEOUT]
    assert merged.duplicates and "a [x86_64]" in merged.duplicates[0]


def test_remaplab_junit_reads_back_the_same_outcomes(tmp_path: Path) -> None:
    results = [good(n, "x86_64", o) for n, o in zip("abcde", list(Outcome)[:5], strict=True)]
    write_junit(results, tmp_path / "junit.xml")
    back = read_junit(tmp_path / "junit.xml")
    assert [(r.scenario, r.arch, r.outcome) for r in back] == [
        (r.scenario, r.arch, r.outcome) for r in results
    ]


PYTEST_JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="scenarios.a.yaml" name="a[x86_64]" time="3.5"/>
<testcase classname="scenarios.b.yaml" name="b[arm64]" time="1.0">
  <failure message="b [arm64]: kernel crash: WARNING in foo">...</failure></testcase>
<testcase classname="scenarios.c.yaml" name="c[arm64]" time="0"><skipped message="no CMA"/>
</testcase>
<testcase classname="tests.unit.test_x" name="test_y" time="0.1"/>
</testsuite></testsuites>"""


def test_pytest_junit_of_a_split_group(tmp_path: Path) -> None:
    (tmp_path / "g1").mkdir()
    (tmp_path / "g1" / "pytest-1.xml").write_text(PYTEST_JUNIT)
    merged = merge_results([tmp_path / "g1"])
    got = {(r.scenario, r.arch): r.outcome for r in merged.results}
    assert got == {
        ("a", "x86_64"): Outcome.PASSED,
        ("b", "arm64"): Outcome.CRASH,
        ("c", "arm64"): Outcome.SKIPPED,
        ("tests.unit.test_x::test_y", ""): Outcome.PASSED,
    }


def test_a_folder_without_reports_is_one_line_125(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", "merge", str(tmp_path / "empty"), str(tmp_path / "nope")]) == 125
    assert capsys.readouterr().err.count("\n") == 1


def test_durations_from_run_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = shard(tmp_path / "s1", [good("a", "x86_64"), good("b", "arm64", Outcome.SKIPPED)], "1/1", 9)
    durations = tmp_path / "d.json"
    (tmp_path / "scenarios").mkdir()
    monkeypatch.chdir(tmp_path)  # node ids are relative to it (not inside the repository)
    assert main(["report", "durations", "s1", "--durations", str(durations),
                 "--scenarios", "scenarios"]) == 0  # fmt: skip
    assert json.loads(durations.read_text()) == {"scenarios/a.yaml::a[x86_64]": 2.0}  # no skips
    assert a.is_dir()


def test_shards_on_different_kernels_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An apt-get update on one machine moved it to Debian's next kernel ABI: the merge says
    which kernels each arch ran on, and report.json keeps them."""
    old, new = (f"debian linux-image-6.1.0-{n}-amd64 6.1.1-{n}" for n in (56, 57))
    first = [good("a", "x86_64"), good("b", "arm64")]
    first[0].kernel, first[1].kernel = old, "debian linux-image-6.1.0-56-arm64 6.1.1-56"
    second = [good("c", "x86_64")]
    second[0].kernel = new
    a = shard(tmp_path / "s1", first, "1/2", 30)
    b = shard(tmp_path / "s2", second, "2/2", 30)
    out = tmp_path / "merged"
    assert main(["report", "merge", str(a), str(b), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"the x86_64 runs were on 2 kernels: {old}; {new}" in err
    assert "arm64 runs were on" not in err
    kernels = json.loads((out / "report.json").read_text())["kernels"]
    assert kernels == {
        "arm64": ["debian linux-image-6.1.0-56-arm64 6.1.1-56"],
        "x86_64": [old, new],
    }


def test_kernels_survive_junit_only_shards(tmp_path: Path) -> None:
    """A pytest shard leaves only JUnit XML: the kernel property the plugin records (and
    remaplab's own junit.xml carries) reaches the merge."""
    r = good("a", "x86_64")
    r.kernel = "debian linux-image-6.1.0-57-amd64 6.1.1-57"
    folder = tmp_path / "s1"
    folder.mkdir()
    write_junit([r], folder / "junit.xml")
    (back,) = read_junit(folder / "junit.xml")
    assert back.kernel == r.kernel
    pytest_xml = tmp_path / "s2" / "junit.xml"
    pytest_xml.parent.mkdir()
    pytest_xml.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1">'
        '<testcase classname="scenarios.b" name="b[arm64]" time="3.0"><properties>'
        '<property name="kernel" value="debian linux-image-6.1.0-57-arm64 6.1.1-57"/>'
        "</properties></testcase></testsuite></testsuites>"
    )
    merged = merge_results([folder, pytest_xml.parent])
    assert merged.meta["kernels"] == {
        "x86_64": ["debian linux-image-6.1.0-57-amd64 6.1.1-57"],
        "arm64": ["debian linux-image-6.1.0-57-arm64 6.1.1-57"],
    }
