#!/usr/bin/env python3
"""Measure crash triage on a folder of console logs headed like syzkaller's report corpus.

Each log may start with 'TITLE: <title>' header lines and a blank line; no TITLE header means
the log holds no kernel crash.  Prints detection (crash logs with a report), false crashes
(no-crash logs with a report) and title agreement (first report's title equal to the header's
title; also equal up to " in " for a coarser view).

    scripts/triage_eval.py ../shared/crashlogs tests/data/crashlogs/derived [-v]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.crash import decode_log, find_reports, strip_header


@dataclass
class Tally:
    crash: int = 0
    detected: int = 0
    exact: int = 0
    prefix: int = 0
    clean: int = 0
    false_crash: int = 0
    refused: int = 0
    misses: list[str] = field(default_factory=list)


def _prefix(title: str) -> str:
    return title.split(" in ")[0]


def judge(path: Path, tally: Tally) -> None:
    try:
        text = decode_log(path.read_bytes())
        title, body = strip_header(text)
        reports = find_reports(body, after_boot=body != text)  # as `remaplab triage` reads them
    except Exception as exc:  # a refusal or a crash of the triage itself counts as refused
        tally.refused += 1
        tally.misses.append(f"{path.name}: REFUSED {type(exc).__name__}: {exc}")
        return
    got = reports[0].title if reports else None
    if title is None:
        tally.clean += 1
        if reports:
            tally.false_crash += 1
            tally.misses.append(f"{path.name}: FALSE CRASH {got!r}")
        return
    tally.crash += 1
    if not reports:
        tally.misses.append(f"{path.name}: MISSED {title!r}")
        return
    tally.detected += 1
    tally.exact += got == title
    tally.prefix += got is not None and _prefix(got) == _prefix(title)
    if got != title:
        tally.misses.append(f"{path.name}: TITLE {got!r} != {title!r}")


def _pct(num: int, den: int) -> str:
    return f"{100.0 * num / den:5.1f}% ({num}/{den})" if den else "   n/a (0/0)"


def summary(name: str, t: Tally) -> str:
    return (
        f"{name}: {t.crash + t.clean + t.refused} logs, {t.crash} crash, {t.clean} no-crash\n"
        f"  detected        {_pct(t.detected, t.crash)}\n"
        f"  false crash     {t.false_crash} of {t.clean}\n"
        f"  title exact     {_pct(t.exact, t.crash)}\n"
        f"  title up to in  {_pct(t.prefix, t.crash)}\n"
        f"  refused         {t.refused}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true", help="list every disagreement")
    args = parser.parse_args(argv)
    for folder in args.folders:
        tally = Tally()
        for path in sorted(p for p in folder.rglob("*.log") if p.is_file()):
            judge(path, tally)
        print(summary(str(folder), tally))
        if args.verbose:
            for line in tally.misses:
                print("   ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
