"""A scenario's own modules (`modules:`): the user's out-of-tree module folders built for the run's
kernel before boot, and modules of the guest kernel; loaded in order after boot, before the
steps, and unloaded in reverse after them."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from lab.build import build_external_module
from lab.errors import LabError
from lab.kernel import Kernel
from lab.log import quiet
from lab.scenario.context import ScenarioRun
from lab.scenario.health import module_args
from lab.scenario.schema import ModuleSpec, Scenario
from lab.steplog import step
from lab.usermodules import ignored_params, ignored_text, load_script

GUEST_DIR = "/tmp/remaplab-modules"
KERNEL_LOG_LINES = 15


class ModuleProblem(LabError):
    """A module would not load or unload: insmod's or rmmod's words and the kernel's."""


@dataclass(frozen=True)
class Prepared:
    spec: ModuleSpec
    kos: tuple[Path, ...]  # built .ko files (a source folder); empty for a guest kernel module

    @property
    def warnings(self) -> list[str]:
        """The compiler's warnings (W=1) from the module's build log."""
        if not self.kos:
            return []
        log = self.kos[0].parent.parent / "build.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        return [ln.strip() for ln in text.splitlines() if "warning:" in ln]

    @property
    def names(self) -> list[str]:
        """The kernel's names of these modules (what rmmod takes)."""
        if not self.kos:
            return [str(self.spec.name).replace("-", "_")]
        return [ko.name.removesuffix(".ko").replace("-", "_") for ko in self.kos]


def build_all(scenario: Scenario, base: Path, kernel: Kernel) -> list[Prepared]:
    """Build every source module (cached); a BuildFailure quotes the compiler."""
    out = []
    for spec in scenario.modules:
        kos: tuple[Path, ...] = ()
        if spec.source is not None:
            with step("module-build", source=spec.source, arch=kernel.arch):
                kos = build_external_module(kernel, (base / spec.source).resolve(), quiet)
        out.append(Prepared(spec, kos))
    return out


def warning_notes(prepared: list[Prepared]) -> list[str]:
    """One result note per module built with warnings (they do not fail a user's build)."""
    notes = []
    for p in prepared:
        found = p.warnings
        if found:
            shown = "; ".join(found[:3]) + (" ..." if len(found) > 3 else "")
            notes.append(f"{p.spec.source}: {len(found)} compiler warning(s) with W=1: {shown}")
    return notes


def symbol_files(prepared: list[Prepared]) -> dict[str, Path]:
    """Module name -> .ko with debug info, for decoding crash reports to file:line."""
    return {name: ko for p in prepared for name, ko in zip(p.names, p.kos, strict=False)}


def _kernel_log(run: ScenarioRun) -> str:
    return run.run(f"dmesg | tail -n {KERNEL_LOG_LINES}").stdout.strip()


def load_all(run: ScenarioRun, prepared: list[Prepared]) -> None:
    for p in prepared:
        params = module_args(p.spec.params)
        with step("module-load", module=p.spec.source or p.spec.name, params=p.spec.params):
            if not p.kos:
                commands = [f"modprobe {shlex.quote(str(p.spec.name))} {params}"]
            else:
                run.run(f"mkdir -p {GUEST_DIR}")
                commands = []
                for ko in p.kos:
                    guest = f"{GUEST_DIR}/{ko.name}"
                    run.vm.put(ko, guest, 0o644, timeout=run.remaining(120))
                    commands.append(f"insmod {guest} {params}")
            for command in commands:
                res = run.run(load_script(command))  # and the parameters the kernel ignored
                if not res.ok:
                    raise ModuleProblem(
                        f"`{command.strip()}` failed: {res.stdout.strip()}\n"
                        f"kernel log:\n{_kernel_log(run)}"
                    )
                ignored = ignored_params(res.stdout, p.names)
                if ignored:
                    what = f"module {p.spec.source or p.spec.name}"
                    text = ignored_text(what, ignored, list(p.kos))
                    raise ModuleProblem(f"{text}; check the scenario's `params`")


def unload_all(run: ScenarioRun, prepared: list[Prepared]) -> None:
    """rmmod in reverse order; a module that will not go is a finding (still in use?)."""
    for p in reversed(prepared):
        # A guest kernel module goes with the dependencies modprobe brought in (a built-in one
        # has no initstate and stays).
        tool = "rmmod" if p.kos else "modprobe -r"
        for name in reversed(p.names):
            q = shlex.quote(name)
            command = f"{tool} {q} 2>&1"
            if not p.kos:
                command = f"[ ! -e /sys/module/{q}/initstate ] || {command}"
            with step("module-unload", module=name):
                res = run.run(command)
            if not res.ok:
                raise ModuleProblem(
                    f"{tool} {name} after the steps failed: {res.stdout.strip()}\n"
                    f"kernel log:\n{_kernel_log(run)}"
                )
