"""Shards: one part of the scenario suite for one machine, by stored durations.

``remaplab run --shard K/N`` and ``pytest scenarios/ --splits N --group K`` make the same
partition: both hand the same items (one per scenario and arch, identified by the pytest node
id ``scenarios/NAME.yaml::NAME[ARCH]``, in pytest's collection order) and the same durations
(``.test_durations``, pytest-split's JSON file: node id -> seconds) to the same function,
pytest-split's ``least_duration`` algorithm: the longest item first, each to the group with the
smallest sum so far; an item without a stored duration counts as the average of the stored
ones.  Items with equal durations are ordered by their name (``str(item)``, which for a pytest
item is ``<ScenarioItem NAME[ARCH]>``: ShardItem says the same)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.limits import MAX_SHARDS
from lab.readfile import read_limited

DURATIONS_FILE = ".test_durations"
SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as pytest-split's --group
    count: int  # as --splits

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``K/N`` with 1 <= K <= N; a LabError saying what is wrong otherwise."""
    m = SHARD.match(text.strip())
    if not m:
        raise LabError(f"--shard {text!r}: expected K/N, e.g. 1/3 (shard K of N)")
    index, count = int(m.group(1)), int(m.group(2))
    if not 1 <= count <= MAX_SHARDS or not 1 <= index <= count:
        raise LabError(f"--shard {text}: K must be between 1 and N (1 <= N <= {MAX_SHARDS})")
    return Shard(index, count)


@dataclass(frozen=True)
class ShardItem:
    """What pytest-split reads of a pytest item: its node id, and its name via str()."""

    nodeid: str
    name: str

    def __str__(self) -> str:
        return f"<ScenarioItem {self.name}>"


def item_name(scenario: str, arch: str) -> str:
    """The pytest item name of a scenario on an arch (lab/pytest_plugin.py)."""
    return f"{scenario}[{arch}]"


def node_id(path: Path, scenario: str, arch: str, root: Path) -> str:
    """The pytest node id of a scenario file's item on arch, relative to root (pytest's
    rootdir: the folder of pyproject.toml)."""
    try:
        rel = os.path.relpath(path.resolve(), root.resolve())
    except ValueError:
        rel = str(path)
    return f"{Path(rel).as_posix()}::{item_name(scenario, arch)}"


def load_durations(path: Path) -> dict[str, float]:
    """pytest-split's durations file (missing: no durations, every item counts the same)."""
    if not path.exists():
        return {}
    what = "a durations file is pytest-split's JSON"
    try:
        data = json.loads(read_limited(path, 64 << 20, what))
        if isinstance(data, list):  # pytest-split's old list-of-pairs format
            data = dict(data)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object of test ids and seconds")
        out = {str(k): float(v) for k, v in data.items()}
    except (ValueError, TypeError) as exc:
        raise LabError(f"{path}: not a durations file ({exc})") from None
    except RecursionError:
        raise LabError(f"{path}: not a durations file (nested too deeply)") from None
    bad = next((k for k, v in out.items() if not 0 <= v < float("inf")), None)
    if bad is not None:
        raise LabError(f"{path}: not a durations file ({bad}: {out[bad]!r} is not seconds)")
    return out


def split(items: list[ShardItem], shard: Shard, durations: dict[str, float]) -> list[ShardItem]:
    """The items of shard, in their original order: pytest-split's own algorithm."""
    from pytest_split.algorithms import Algorithms

    groups = Algorithms.least_duration.value(shard.count, items, durations)  # type: ignore[arg-type]
    return list(groups[shard.index - 1].selected)  # type: ignore[arg-type]


def update_durations(path: Path, measured: Iterable[tuple[str, float]]) -> int:
    """Merge measured (node id, seconds) pairs into the durations file, as pytest-split's
    --store-durations does (others kept); returns how many were written."""
    durations = load_durations(path)
    count = 0
    for nodeid, seconds in measured:
        durations[nodeid] = round(seconds, 3)
        count += 1
    path.write_text(json.dumps(durations, sort_keys=True, indent=4) + "\n")
    return count


# pytest's configuration files and what makes each one (pytest.ini counts even when empty)
PYTEST_CONFIGS = {
    "pytest.ini": "",
    ".pytest.ini": "",
    "pyproject.toml": "[tool.pytest.ini_options]",
    "tox.ini": "[pytest]",
    "setup.cfg": "[tool:pytest]",
}


def _pytest_config(folder: Path) -> bool:
    for name, section in PYTEST_CONFIGS.items():
        path = folder / name
        if path.is_file():
            try:
                if section in path.read_text(errors="replace"):
                    return True
            except OSError:
                continue
    return False


def shard_root(folder: Path) -> Path:
    """What node ids are relative to, and where .test_durations is: pytest's rootdir.  The
    repository when the scenario folder is inside it; else, as pytest finds it, the nearest
    folder above the scenario folder with a pytest configuration (a pytest.ini, a
    pyproject.toml with [tool.pytest.ini_options], ...), else the nearest pyproject.toml
    (pytest 8's fallback); else the working folder."""
    from lab.paths import REPO

    here = folder.resolve()
    if here.is_relative_to(REPO.resolve()):
        return REPO
    above = (here, *here.parents)
    for parent in above:
        if _pytest_config(parent):
            return parent
    for parent in above:
        if (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


def scenario_items(
    paths: Iterable[tuple[Path, str]], arches: list[str], root: Path
) -> list[tuple[ShardItem, tuple[str, str]]]:
    """One item per (scenario file, arch), in pytest's collection order (files sorted by path,
    then the arches as given), each with its (scenario, arch) pair."""
    out = []
    for path, name in sorted(paths, key=lambda p: str(p[0])):
        for arch in arches:
            item = ShardItem(node_id(path, name, arch, root), item_name(name, arch))
            out.append((item, (name, arch)))
    return out


def shard_pairs(
    paths: Iterable[tuple[Path, str]], arches: list[str], shard: Shard, durations: Path
) -> list[tuple[str, str]]:
    """The (scenario, arch) pairs of shard, in collection order."""
    paths = list(paths)
    root = shard_root(paths[0][0].parent) if paths else Path.cwd()
    items = scenario_items(paths, arches, root)
    chosen = set(split([i for i, _ in items], shard, load_durations(durations)))
    return [pair for item, pair in items if item in chosen]
