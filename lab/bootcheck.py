"""What a boot must not hide: a kernel report printed while the guest booted.  A guest that
reported before it was ready is no clean subject for a test (its state is suspect; 6.1's KASAN
has spent its one report), so the boot is retried once; a report on the retry too is noted and
the guest used (a kernel that reports at every boot is still the user's to test), never hidden,
never a failure of its own."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lab.crash import find_reports

if TYPE_CHECKING:
    from lab.vm import VM


class BootReport(Exception):
    """The kernel reported while the guest booted; its text is saved at .saved."""

    def __init__(self, title: str, saved: Path) -> None:
        super().__init__(f"kernel report during boot: {title}")
        self.saved = saved


def reported(vm: VM) -> bool:
    """Whether vm's kernel reported while it booted (its boot-report-N.txt is kept)."""
    return any(p.name.startswith("boot-report-") for p in vm.stalls)


def check(console_text: str, folder: Path, attempt: int) -> None:
    """BootReport when the boot's console holds a kernel report; its text is saved in folder
    (boot-report-ATTEMPT.txt)."""
    reports = find_reports(console_text)
    if not reports:
        return
    saved = folder / f"boot-report-{attempt}.txt"
    saved.write_text("".join(f"{r.title}\n\n{r.text}\n\n" for r in reports))
    raise BootReport(reports[0].title, saved)


def retry(vm: VM, attempt: int, retried: bool) -> bool:
    """Whether vm's boot just now is to be retried for a kernel report during it (once: with
    retried, a report is only noted).  Either way the report's text is kept with the VM's
    folder and named in vm.boot_notes, which reach the result and the summary."""
    assert vm.console is not None
    try:
        check(vm.console.text(), vm.workdir, attempt + 1)
    except BootReport as exc:
        vm.stalls.append(exc.saved)  # the evidence keeps the VM's folder
        if retried:
            vm.boot_notes.append(
                f"{exc}, again after a retry; the guest is used (a KASAN kernel's one report is "
                f"spent) ({exc.saved})"
            )
            vm.log(f"{vm.options.arch}: {exc}, again after a retry ({exc.saved})")
            return False
        vm.boot_notes.append(f"boot retried: {exc} (its text: {exc.saved})")
        vm.log(f"{vm.options.arch}: {exc} ({exc.saved}); retrying the boot once")
        return True
    return False
