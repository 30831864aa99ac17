"""A scenario's requires: each is met or the scenario is skipped with the reason; the negative
ones let one reproducer hold on a kernel that lacks a debug option (and skip where the debug
kernel catches the bug itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.kernel.base import Kernel
from lab.scenario.load import load_text
from lab.scenario.runner import skip_reason


def _kernel(tmp_path: Path, config: str) -> Kernel:
    (tmp_path / ".config").write_text(config)
    return Kernel(
        arch="x86_64",
        release="6.1.0",
        image=tmp_path / "bzImage",
        kdir=tmp_path,
        modules_dir=None,
        config=tmp_path / ".config",
        identity="test kernel",
        key="k",
    )


@pytest.mark.parametrize(
    ("requires", "config", "skipped"),
    [
        ("debug_vm", "CONFIG_DEBUG_VM=y\n", False),
        ("debug_vm", "", True),
        ("nodebug_vm", "CONFIG_DEBUG_VM=y\n", True),
        ("nodebug_vm", "# CONFIG_DEBUG_VM is not set\n", False),
        ("kasan", "", True),
        ("nokasan", "CONFIG_KASAN=y\n", True),
        ("nokasan", "", False),
    ],
)
def test_requirements(tmp_path: Path, requires: str, config: str, skipped: bool) -> None:
    text = (
        f"name: r\ndescription: d\nrequires: [{requires}]\nsteps: [{{run: {{command: 'true'}}}}]\n"
    )
    scenario = load_text(text, tmp_path / "r.yaml")
    reason = skip_reason(scenario, _kernel(tmp_path, config))
    assert (reason is not None) == skipped, reason
    if skipped and requires.startswith("no"):
        assert reason is not None and "needs a kernel without CONFIG_" in reason
