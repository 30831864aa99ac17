"""A user's own modules given on the command line (`--module DIR`, `--module-param
MOD.NAME=VALUE`) to `reproduce`, `boot` and `shell`: checked, built for the kernel, and loaded
into a guest with what the kernel said about them (a report, a parameter it ignored)."""

from __future__ import annotations

import re
import secrets
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from lab.build import BuildFailure, build_external_module
from lab.crash import find_reports
from lab.errors import GuestTimeout, LabError
from lab.log import Log
from lab.paths import is_module_folder
from lab.rootfs import module_name
from lab.watch import sync_console

if TYPE_CHECKING:
    from lab.kernel import Kernel
    from lab.vm import VM

MODULE_PARAM = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z_][A-Za-z0-9_]*)=([^\s'\"\\]+)")
# kernel/params.c unknown_module_param_cb(): "MOD: unknown parameter 'NAME' ignored"
UNKNOWN_PARAM = re.compile(r"(\S+): unknown parameter '([^']*)' ignored")
LOAD_TIMEOUT_S = 15.0


def load_script(command: str) -> str:
    """command (an insmod or modprobe) with the kernel log's lines since it grepped for
    ignored parameters: the kernel takes a module with a parameter it does not have and only
    logs it (kernel/params.c), so a misspelt `bug=1` would test the correct driver.  A line
    written to /dev/kmsg first marks where "since" starts (a count of dmesg's lines would not:
    once the ring buffer is full it stops growing).  Its exit status is command's."""
    mark = f"remaplab: module load {secrets.token_hex(6)}"
    return (
        f"echo '<6>{mark}' > /dev/kmsg; {command} 2>&1; s=$?; "
        f"dmesg | sed -n '/{mark}/,$p' | grep -F 'unknown parameter'; exit $s"
    )


def ignored_params(output: str, names: list[str]) -> list[str]:
    """The parameters the kernel said it ignored (load_script's output) for the modules named
    (as the kernel names them: '-' and '_' alike)."""
    ours = {n.replace("-", "_") for n in names}
    return [p for mod, p in UNKNOWN_PARAM.findall(output) if mod.replace("-", "_") in ours]


def declared_params(ko: Path) -> list[str]:
    """The parameters a built module declares (its .modinfo's parmtype= entries)."""
    from elftools.elf.elffile import ELFFile

    with ko.open("rb") as fh:
        section = ELFFile(fh).get_section_by_name(".modinfo")
        data = section.data() if section is not None else b""
    tag = b"parmtype="
    entries = data.split(b"\0")
    return sorted(
        {
            e[len(tag) :].split(b":")[0].decode(errors="replace")
            for e in entries
            if e.startswith(tag)
        }
    )


def ignored_text(what: str, ignored: list[str], kos: list[Path]) -> str:
    """A parameter the module lacks, in one line, with the ones it has (from the .ko)."""
    said = ", ".join(repr(n) for n in ignored)
    text = f"{what} has no parameter {said} (the kernel loaded it and ignored it"
    if kos:
        known = sorted({n for ko in kos for n in declared_params(ko)})
        text += f"; its parameters: {', '.join(known) if known else 'none'}"
    return text + ")"


class ModuleLoadFailure(LabError):
    """The user's module would not load, or its loading made the kernel report (or ignore a
    parameter): nothing can start with it, on any guest."""


def check_args(folders: tuple[Path, ...], params: tuple[str, ...]) -> None:
    """Refuse a folder that is no module's or a malformed parameter, in one line (LabError)."""
    for folder in folders:
        if not folder.exists():
            raise LabError(f"--module {folder}: no such folder")
        if not is_module_folder(folder):
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
    names = {module_name(ko.name): ko.stem for ko in kos}
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
    """Load a user's module into a guest; ModuleLoadFailure quoting insmod when it will not
    (or does not return), naming the kernel's report when loading it made one, or the
    parameters it ignored."""
    assert vm.console is not None
    guest = f"/root/{ko.name}"
    vm.put(ko, guest, 0o644)
    mark = vm.console.mark()
    try:
        res = vm.run(load_script(shlex.join(["insmod", guest, *params])), LOAD_TIMEOUT_S)
    except GuestTimeout:
        raise ModuleLoadFailure(
            f"insmod {ko.name} did not return within {LOAD_TIMEOUT_S:g} s "
            f"(console log: {vm.console_log})"
        ) from None
    sync_console(vm.console, vm.run)
    reports = find_reports(vm.console.text(mark), after_boot=True)
    if reports:
        first = reports[0]
        raise ModuleLoadFailure(
            f"loading {ko.name} made the kernel report [{first.kind}] {first.title} "
            f"(console log: {vm.console_log})"
        )
    where = f"(console log: {vm.console_log})"
    if not res.ok:  # insmod's words (its output and stderr are one stream), not grep's
        said = [ln for ln in res.stdout.strip().splitlines() if "unknown parameter" not in ln]
        last = said[-1] if said else f"exit {res.status}"
        raise ModuleLoadFailure(f"insmod {ko.name} failed: {last} {where}")
    ignored = ignored_params(res.stdout, [ko.stem])
    if ignored:
        text = ignored_text(ko.name, ignored, [ko])
        raise ModuleLoadFailure(f"{text}: check --module-param {where}")
