"""Run reports: JUnit XML (for CI systems) and JSON (for people and scripts); read back and
merged (`remaplab report merge`: the shards of one suite, run on several machines)."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.scenario.result import StepRecord
from lab.scenario.runner import Outcome, Result


def write_json(results: list[Result], path: Path, meta: dict[str, object]) -> None:
    data = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **meta,
        "summary": {o.value: sum(r.outcome == o for r in results) for o in Outcome},
        "results": [r.as_dict() for r in results],
    }
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def write_junit(results: list[Result], path: Path) -> None:
    suite = ET.Element(
        "testsuite",
        name="remaplab",
        tests=str(len(results)),
        failures=str(sum(r.outcome == Outcome.FAILED for r in results)),
        errors=str(
            sum(r.outcome not in (Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED) for r in results)
        ),
        skipped=str(sum(r.outcome == Outcome.SKIPPED for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"remaplab.{r.arch}",
            name=r.scenario,
            time=f"{r.seconds:.3f}",
        )
        if r.kernel:  # as pytest writes a test's user properties
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", name="kernel", value=r.kernel)
        if r.outcome == Outcome.SKIPPED:
            ET.SubElement(case, "skipped", message=r.message)
        elif r.outcome == Outcome.FAILED:
            ET.SubElement(case, "failure", message=r.message).text = r.render()
        elif r.outcome != Outcome.PASSED:
            ET.SubElement(
                case, "error", message=f"{r.outcome.value}: {r.message}"
            ).text = r.render()
    ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)


# -- reading reports back, merging shards ---------------------------------------------------
OUTCOME_IN_MESSAGE = re.compile(
    r"(?:^|\]: )(" + "|".join(re.escape(o.value) for o in Outcome) + r"): "
)
PYTEST_ITEM = re.compile(r"^(?P<name>.+)\[(?P<arch>[^\[\]]+)\]$")


def result_from_dict(data: dict[str, Any]) -> Result:
    """A Result back from its report.json form (Result.as_dict)."""
    known = {f.name for f in fields(Result)}
    kept = {k: v for k, v in data.items() if k in known}
    kept["outcome"] = Outcome(kept["outcome"])
    kept["steps"] = [StepRecord(**s) for s in kept.get("steps", [])]
    return Result(**kept)


def _junit_outcome(case: ET.Element) -> tuple[Outcome, str]:
    for tag, default in (("skipped", Outcome.SKIPPED), ("failure", Outcome.FAILED)):
        el = case.find(tag)
        if el is not None:
            message = el.get("message", "")
            m = OUTCOME_IN_MESSAGE.search(message)
            return (Outcome(m.group(1)) if m and tag == "failure" else default), message
    el = case.find("error")
    if el is not None:
        message = el.get("message", "")
        m = OUTCOME_IN_MESSAGE.search(message)
        return (Outcome(m.group(1)) if m else Outcome.SETUP_ERROR), message
    return Outcome.PASSED, ""


def read_junit(path: Path) -> list[Result]:
    """Results from a JUnit XML file: remaplab's own (classname remaplab.ARCH) or pytest's
    (--junitxml; a scenario item is named NAME[ARCH], any other test keeps its class name)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise LabError(f"{path}: not a JUnit XML file ({exc})") from None
    results = []
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        if classname.startswith("remaplab."):
            scenario, arch = name, classname.removeprefix("remaplab.")
        elif m := PYTEST_ITEM.match(name):
            scenario, arch = m.group("name"), m.group("arch")
        else:
            scenario, arch = f"{classname}::{name}" if classname else name, ""
        outcome, message = _junit_outcome(case)
        seconds = float(case.get("time") or 0.0)
        props = {p.get("name"): p.get("value", "") for p in case.iter("property")}
        result = Result(scenario, arch, outcome, seconds=seconds, message=message)
        result.kernel = props.get("kernel") or ""  # pytest's record of the plugin's property
        results.append(result)
    return results


def read_results(folder: Path) -> tuple[list[Result], dict[str, Any]]:
    """A run folder's results: report.json when there is one, else junit.xml (or any single
    *.xml: pytest's --junitxml); meta from report.json."""
    report = folder / "report.json"
    if report.is_file():
        try:
            data = json.loads(report.read_text())
            return [result_from_dict(r) for r in data["results"]], data
        except (ValueError, KeyError, TypeError) as exc:
            raise LabError(f"{report}: not a remaplab report ({exc!r})") from None
    xmls = [folder] if folder.is_file() else sorted(folder.glob("*.xml"))
    if folder.is_dir() and (folder / "junit.xml").is_file():
        xmls = [folder / "junit.xml"]
    if len(xmls) != 1:
        raise LabError(f"{folder}: no report.json and not exactly one JUnit XML file in it")
    return read_junit(xmls[0]), {}


@dataclass
class Merged:
    results: list[Result]
    meta: dict[str, object]  # report.json's: where each part came from, arches, wall_s
    duplicates: list[str]
    arches: list[str]
    wall_s: float  # the longest part's (the shards ran side by side)


def merge_results(folders: list[Path]) -> Merged:
    """Every folder's results in one list (sorted by scenario, arch).  A (scenario, arch) in
    two folders (overlapping shards, a rerun) is kept once: the one that did not pass, if any;
    it is named in duplicates."""
    chosen: dict[tuple[str, str], Result] = {}
    duplicates: list[str] = []
    shards: list[dict[str, object]] = []
    arches: list[str] = []
    for folder in folders:
        results, meta = read_results(folder)
        shard = {"from": str(folder), "runs": len(results), "wall_s": meta.get("wall_s")}
        shards.append(shard | ({"shard": meta["shard"]} if "shard" in meta else {}))
        arches += [a for a in meta.get("arches", []) if a not in arches]
        for r in results:
            key = (r.scenario, r.arch)
            if key in chosen:
                duplicates.append(f"{r.scenario} [{r.arch}] (again in {folder})")
                if chosen[key].ok and not r.ok:
                    chosen[key] = r
                continue
            chosen[key] = r
    arches += sorted({r.arch for r in chosen.values()} - set(arches))
    walls = [float(w) for s in shards if isinstance(w := s.get("wall_s"), int | float)]
    meta_out: dict[str, object] = {
        "merged_from": shards,
        "arches": arches,
        "wall_s": max(walls, default=0.0),  # the shards ran side by side
        "machine_s": sum(walls),
        "duplicates": duplicates,
    }
    results = sorted(chosen.values(), key=lambda r: (r.scenario, r.arch))
    meta_out["kernels"] = kernels_by_arch(results)
    return Merged(results, meta_out, duplicates, arches, max(walls, default=0.0))


def kernels_by_arch(results: list[Result]) -> dict[str, list[str]]:
    """Each arch's kernels the results ran on (more than one: the shards' machines differed,
    e.g. an apt-get update moved one to Debian's next kernel ABI)."""
    seen: dict[str, list[str]] = {}
    for r in results:
        if r.kernel and r.kernel not in seen.setdefault(r.arch, []):
            seen[r.arch].append(r.kernel)
    return seen
