"""What a boot must not hide: a kernel report printed while the guest booted.  A guest that
reported before it was ready is no clean subject for a test (its state is suspect; 6.1's KASAN
has spent its one report), so the boot is retried once; a report on the retry too is noted and
the guest used (a kernel that reports at every boot is still the user's to test), never hidden,
never a failure of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.crash import find_reports
from lab.crash.table import warm

if TYPE_CHECKING:
    from lab.vm import VM


__all__ = ["BootReport", "check", "retry", "warm"]  # warm: the table check() needs, parsed early


@dataclass(frozen=True)
class BootReport:
    """A kernel report printed while the guest booted; its text is saved at .saved."""

    title: str
    saved: Path

    def __str__(self) -> str:
        return f"kernel report during boot: {self.title}"


def check(console_text: str, folder: Path, attempt: int) -> BootReport | None:
    """The first kernel report the boot's console holds, all of them saved in folder
    (boot-report-ATTEMPT.txt); None for a clean boot."""
    reports = find_reports(console_text)
    if not reports:
        return None
    saved = folder / f"boot-report-{attempt}.txt"
    saved.write_text(
        "".join(f"{r.title}\n\n{r.before}\n{r.text}\n\n".replace("\n\n\n", "\n\n") for r in reports)
    )
    return BootReport(reports[0].title, saved)


def retry(vm: VM, attempt: int, retried: bool) -> bool:
    """Whether vm's boot just now is to be retried for a kernel report during it (once: with
    retried, a report is only noted).  Either way the report's text is kept with the VM's
    folder and named in vm.boot_notes, which reach the result and the summary, and
    vm.boot_reported is set (no snapshot is saved from such a guest)."""
    assert vm.console is not None
    found = check(vm.console.text(), vm.workdir, attempt + 1)
    if found is None:
        return False
    vm.boot_reported = True
    vm.stalls.append(found.saved)  # the evidence keeps the VM's folder
    if retried:
        vm.boot_notes.append(
            f"{found}, again after a retry; the guest is used (a KASAN kernel's one report is "
            f"spent) ({found.saved})"
        )
        vm.log(f"{vm.options.arch}: {found}, again after a retry ({found.saved})")
        return False
    vm.boot_notes.append(f"boot retried: {found} (its text: {found.saved})")
    vm.log(f"{vm.options.arch}: {found} ({found.saved}); retrying the boot once")
    return True
