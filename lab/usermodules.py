"""A user's own modules given on the command line (`--module DIR`, `--module-param
MOD.NAME=VALUE`) to `reproduce`, `boot` and `shell`: checked, built for the kernel, and loaded
into a guest with what the kernel said about them (a report, a parameter it ignored)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from lab.build import BuildFailure, build_external_module
from lab.crash import find_reports
from lab.errors import LabError
from lab.log import Log
from lab.watch import sync_console

if TYPE_CHECKING:
    from lab.kernel import Kernel
    from lab.vm import VM

MODULE_PARAM = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z_][A-Za-z0-9_]*)=([^\s'\"\\]+)")
# kernel/params.c unknown_module_param_cb(): "MOD: unknown parameter 'NAME' ignored"
UNKNOWN_PARAM = re.compile(r"(\S+): unknown parameter '([^']*)' ignored")
LOAD_TIMEOUT_S = 15.0


class ModuleLoadFailure(LabError):
    """The user's module would not load, or its loading made the kernel report (or ignore a
    parameter): nothing can start with it, on any guest."""


def check_args(folders: tuple[Path, ...], params: tuple[str, ...]) -> None:
    """Refuse a folder that is no module's or a malformed parameter, in one line (LabError)."""
    for folder in folders:
        if not folder.is_dir() or not any((folder / n).is_file() for n in ("Kbuild", "Makefile")):
            raise LabError(f"--module {folder}: not a module folder (no Kbuild or Makefile)")
    if params and not folders:
        raise LabError(f"--module-param {params[0]!r}: no --module to give it to")
    for param in params:
        if not MODULE_PARAM.fullmatch(param):
            raise LabError(
                f"--module-param {param!r}: want MOD.NAME=VALUE (a module's name, a "
                "parameter name, a value without spaces or quotes)"
            )


def build(kernel: Kernel, folders: tuple[Path, ...], log: Log) -> list[Path]:
    """Every folder's .ko files, built for kernel (cached); a build failure names its folder."""
    kos: list[Path] = []
    for folder in folders:
        try:
            kos += build_external_module(kernel, folder.resolve(), log)
        except BuildFailure as exc:
            raise LabError(f"--module {folder}: {exc}") from None
    return kos


def insmod_params(given: tuple[str, ...], kos: list[Path]) -> dict[str, tuple[str, ...]]:
    """--module-param MOD.NAME=VALUE per built module (by its .ko name; '-' and '_' alike, as
    the kernel takes them); LabError naming the modules there are for a MOD that is none."""
    names = {ko.stem.replace("-", "_"): ko.stem for ko in kos}
    out: dict[str, list[str]] = {}
    for param in given:
        m = MODULE_PARAM.fullmatch(param)
        assert m is not None  # check_args refused the rest
        mod = m.group(1).replace("-", "_")
        if mod not in names:
            known = ", ".join(sorted(names.values())) or "none: no --module"
            raise LabError(f"--module-param {param!r}: no module {m.group(1)!r} (built: {known})")
        out.setdefault(names[mod], []).append(f"{m.group(2)}={m.group(3)}")
    return {k: tuple(v) for k, v in out.items()}


def insmod(vm: VM, ko: Path, params: tuple[str, ...] = ()) -> None:
    """Load a user's module into a guest; ModuleLoadFailure quoting insmod when it will not,
    naming the kernel's report when loading it made one, or the parameters it ignored."""
    assert vm.console is not None
    guest = f"/root/{ko.name}"
    vm.put(ko, guest, 0o644)
    mark = vm.console.mark()
    res = vm.run(shlex.join(["insmod", guest, *params]), LOAD_TIMEOUT_S)
    sync_console(vm.console, vm.run)
    said = vm.console.text(mark)
    reports = find_reports(said, after_boot=True)
    if reports:
        first = reports[0]
        raise ModuleLoadFailure(
            f"loading {ko.name} made the kernel report [{first.kind}] {first.title} "
            f"(console log {vm.console_log})"
        )
    if not res.ok:
        lines = (res.stderr or res.stdout).strip().splitlines()
        raise ModuleLoadFailure(
            f"insmod {ko.name} failed: {lines[-1] if lines else f'exit {res.status}'}"
        )
    ignored = [name for _mod, name in UNKNOWN_PARAM.findall(said)]
    if ignored:
        raise ModuleLoadFailure(
            f"{ko.name} has no parameter {', '.join(repr(n) for n in ignored)} (the kernel "
            "loaded it and ignored it): check --module-param"
        )
