"""Run reports: JUnit XML (for CI systems) and JSON (for people and scripts)."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

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
        if r.outcome == Outcome.SKIPPED:
            ET.SubElement(case, "skipped", message=r.message)
        elif r.outcome == Outcome.FAILED:
            ET.SubElement(case, "failure", message=r.message).text = r.render()
        elif r.outcome != Outcome.PASSED:
            ET.SubElement(
                case, "error", message=f"{r.outcome.value}: {r.message}"
            ).text = r.render()
    ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)
