"""A user's own kernel config (``--config FILE``): merged with what the lab needs to boot and
reach the guest (``lab/data/kernel/boot.config`` and the arch's fragment), ``olddefconfig``, and
then every option of the user's file that did not survive is named, so a reproduction on a
config that silently lost the option the bug needs cannot pass for a faithful one."""

from __future__ import annotations

from pathlib import Path

from lab.log import Log
from lab.paths import DATA
from lab.profiles import Profile

FRAGMENTS = DATA / "kernel"
UNSET = "n"


def user_fragments(profile: Profile) -> list[Path]:
    """What is merged over a user's config: the boot essentials, then the arch's fragment."""
    return [FRAGMENTS / "boot.config", FRAGMENTS / f"{profile.arch}.config"]


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X -> value of a .config or fragment; 'n' for '# CONFIG_X is not set'."""
    options: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("CONFIG_") and "=" in line:
            name, value = line.split("=", 1)
            options[name] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            options[line[2:].split()[0]] = UNSET
    return options


def _shown(value: str | None) -> str:
    if value is None:
        return "absent"
    return "not set" if value == UNSET else value


def not_surviving(user_text: str, final_text: str, lab_wanted: dict[str, str]) -> list[str]:
    """One line per option the user's file sets whose final value differs (or is gone), saying
    whether the lab's boot fragments overrode it or olddefconfig dropped it (a dependency not
    met, a symbol this tree does not have)."""
    user = parse_config(user_text)
    final = parse_config(final_text)
    lines = []
    for name, want in user.items():
        got = final.get(name)
        if got == want or (want == UNSET and got is None):
            continue  # '# X is not set' and an absent X are the same
        if name in lab_wanted and lab_wanted[name] == got:
            why = "the lab needs it to boot"
        elif got is None:
            why = "not in this tree's Kconfig, or its dependencies are not met"
        else:
            why = "olddefconfig changed it (dependencies or select)"
        lines.append(f"{name}={_shown(want)} -> {_shown(got)}: {why}")
    return lines


def report_dropped(lines: list[str], config: Path, log: Log) -> None:
    if not lines:
        log(f"every option of {config} survived in the final .config")
        return
    log(f"{len(lines)} option(s) of {config} did not survive in the final .config:")
    for line in lines:
        log(f"  {line}")
