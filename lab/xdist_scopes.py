"""How pytest -n N hands scenario items to workers (pytest-xdist's scheduler hook, used by
lab/pytest_plugin.py under ``--dist load`` and ``--dist loadgroup``).

A worker's VM pool reuses one VM per arch while the boot settings match, so the scenario items
are cut into work units of one arch and one boot setting (``BootKey``), in chunks of at most
ceil(items / workers): each unit boots one VM and reuses it, the biggest units start first, and
with more workers than (arch, boot setting) pairs the big units are split so every worker gets
work.  Any other test goes with the rest of its file (xdist's ``loadfile``: a module's
module-scoped fixtures, such as a booted VM, are set up in one worker only), or with its
``xdist_group`` when xdist renamed its node id ``ID@GROUP``.  (pytest 9 keeps node ids where
xdist 3.8 cannot rename them, so ``xdist_group`` marks alone group nothing there.)  Scenario
node ids are not renamed: reports and ``.test_durations`` keep the ids of a serial run."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadGroupScheduling

SCENARIO_ID = re.compile(r"^(?P<path>[^:]+)::(?P<name>[^\[\]]+)\[(?P<arch>[^\[\]]+)\]$")


def scenario_scopes(config: pytest.Config, nodeids: list[str], workers: int) -> dict[str, str]:
    """nodeid -> work unit, for the scenario items among nodeids."""
    from lab.pytest_plugin import is_scenario_file
    from lab.scenario.load import ScenarioError, load_file
    from lab.scenario.pool import BootKey

    groups: dict[tuple[str, str], list[str]] = {}
    for nodeid in nodeids:
        m = SCENARIO_ID.match(nodeid)
        if not m:
            continue
        path = Path(config.rootpath) / m.group("path")
        if not path.is_file() or not is_scenario_file(config, path):
            continue
        try:
            boot = load_file(path).scenario.boot
        except ScenarioError:
            continue
        key = BootKey.of(m.group("arch"), boot)
        groups.setdefault((key.arch, repr(key)), []).append(nodeid)
    total = sum(len(ids) for ids in groups.values())
    size = max(1, math.ceil(total / max(1, workers)))
    scopes = {}
    for (arch, boot_key), ids in groups.items():
        for i, nodeid in enumerate(ids):
            scopes[nodeid] = f"remaplab {arch} {boot_key} #{i // size}"
    return scopes


class ScenarioScheduling(LoadGroupScheduling):  # type: ignore[misc]
    """Scenario items by arch and boot settings, other tests by file (module docstring)."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        self._scopes: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._scopes is None:  # first called once the collection is complete
            self._scopes = scenario_scopes(
                self.config, list(self.collection or []), len(self.nodes)
            )
        scope = self._scopes.get(nodeid)
        if scope is not None:
            return scope
        if nodeid.rfind("@") > nodeid.rfind("]"):  # xdist_group, renamed by xdist
            return str(super()._split_scope(nodeid))
        return nodeid.split("::", 1)[0]  # its file
