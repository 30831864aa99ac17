"""Host-side helpers for the guest tools: run multimap-ctl and pagemap-dump, parse their JSON,
hold a mapping open while the host inspects it."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
from dataclasses import dataclass
from typing import Any

from lab.errors import GuestTimeout, LabError
from lab.guest import Guest
from lab.ssh import CommandResult


def _json(res: CommandResult, what: str) -> dict[str, Any]:
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise LabError(f"{what} printed no JSON (exit {res.status}): {res.stderr.strip()[-500:]}")
    try:
        data: dict[str, Any] = json.loads(line)
    except ValueError as exc:
        raise LabError(f"{what} printed bad JSON: {exc}: {line[:200]}") from exc
    return data


def ctl_args(
    backing: str = "pages",
    mapping: str = "remap",
    pages: int = 16,
    *,
    private: bool = False,
    private_write: bool = False,
    offset: int = 0,
    length: int = 0,
    actions: tuple[str, ...] = (),
    seed: int | None = None,
    list_pages: bool = True,
) -> list[str]:
    args = ["--backing", backing, "--mapping", mapping, "--pages", str(pages)]
    if private_write:
        args.append("--private-write")
    elif private:
        args.append("--private")
    if offset:
        args += ["--offset", str(offset)]
    if length:
        args += ["--length", str(length)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if list_pages:
        args.append("--list-pages")
    for action in actions:
        args += ["--do", action]
    return args


def ctl(vm: Guest, args: list[str], timeout: float = 120.0) -> dict[str, Any]:
    res = vm.run("multimap-ctl " + shlex.join(args), timeout=timeout)
    return _json(res, "multimap-ctl")


@dataclass
class Held:
    """A holder (multimap-ctl or remaplab-map --hold) in the guest keeping its mapping alive."""

    vm: Guest
    pid: int
    report: dict[str, Any]
    tool: str = "multimap-ctl"

    def release(self, timeout: float = 30.0) -> None:
        # Gone, or a zombie (its mm and files are released by then; init reaps it later).
        # Polls the process table in the guest; bounded by timeout.
        stat = f"/proc/{self.pid}/stat"
        try:
            res = self.vm.run(
                f"kill -TERM {self.pid}; while [ -e {stat} ] && "
                f"[ \"$(cut -d' ' -f3 {stat} 2>/dev/null)\" != Z ]; do usleep 2000; done",
                timeout=timeout,
            )
        except GuestTimeout:  # said as what it is, not as the lab's polling loop
            raise GuestTimeout(
                f"releasing the mapping: {self.tool} (pid {self.pid}) did not exit within "
                f"{timeout:g} s of SIGTERM"
            ) from None
        if not res.ok:
            said = exit_words(res.stderr.strip()) or f"exit {res.status}"
            raise LabError(f"could not release {self.tool} (pid {self.pid}): {said}")


class HoldFailed(LabError):
    """The holder reported a failed call or check (and exited instead of holding)."""

    def __init__(self, tool: str, report: dict[str, Any]) -> None:
        self.report = report
        failed = [a for a in report.get("actions", []) if not a.get("ok")]
        said = "; ".join(
            f"{a.get('action', '?')}: {a.get('detail') or 'failed'}"
            + (f" ({a['error']})" if a.get("error") else "")
            for a in failed
        )
        what = f"failed: {said}" if failed else f"report {report}"
        super().__init__(f"{tool} --hold failed: {faults(report)}{what}")


def faults(report: dict[str, Any]) -> str:
    """The pages a holder's access faulted on, as a sentence (or nothing)."""
    pages = report.get("faulted") or []
    if not pages:
        return ""
    signal = report.get("fault_signal", "a fault")
    return f"pages {pages} fault on access ({signal}: not mapped, or mapped to nothing); "


def hold(vm: Guest, args: list[str], timeout: float = 120.0, tool: str = "multimap-ctl") -> Held:
    """Start TOOL ARGS --hold (multimap-ctl, or remaplab-map for any device) in the background;
    return once its report is out."""
    base = f"/tmp/{tool}-{abs(hash(tuple(args))) % 100000}"
    fifo, err = f"{base}.fifo", f"{base}.err"
    # No report line means the holder ended (or closed its output) first: its own exit status
    # and stderr say how, not the wrapper's "exit 0" (a driver's bad page got it SIGKILLed).
    cmd = (
        f"rm -f {fifo}; mkfifo {fifo}; "
        f"{tool} {shlex.join(args)} --hold > {fifo} 2>{err} < /dev/null & holder=$!; "
        f"read -r line < {fifo}; rm -f {fifo}; "
        f'[ -n "$line" ] && {{ rm -f {err}; echo "$line"; exit 0; }}; '
        f'if kill -0 $holder 2>/dev/null; then echo "{tool} closed its output, still running" >&2; '
        f'else wait $holder; echo "{tool} exited with status $?" >&2; fi; '
        f"tail -c 400 {err} >&2; rm -f {err}; exit 1"
    )
    try:
        res = vm.run(cmd, timeout=timeout)
    except GuestTimeout:  # said as what it waited for, not as the lab's wrapper script
        raise GuestTimeout(
            f"{tool} {shlex.join(args)} --hold did not report within {timeout:g} s (mapping "
            "and writing every page; a driver that hangs or oopses in its mmap keeps it there)"
        ) from None
    if not res.ok:
        said = "; ".join(ln for ln in exit_words(res.stderr.strip()).splitlines() if ln.strip())
        raise LabError(f"{tool} --hold printed no report: {said}")
    report = _json(res, f"{tool} --hold")
    if not report.get("ok"):
        raise HoldFailed(tool, report)
    return Held(vm, int(report["pid"]), report, tool)


def exit_words(text: str) -> str:
    """'exited with status 137' -> '... 137 (killed by SIGKILL)': a shell's 128+N is signal N."""

    def name(m: re.Match[str]) -> str:
        status = int(m.group(1))
        if 128 < status < 128 + 65:
            with contextlib.suppress(ValueError):
                return f"{m.group(0)} (killed by {signal.Signals(status - 128).name})"
        return m.group(0)

    return re.sub(r"exited with status (\d+)", name, text)


def pagemap(vm: Guest, pid: int, start: int, end: int, walk: bool = False) -> dict[str, Any]:
    """pagemap-dump of [start, end) in process pid; with walk, also the kernel's page-table walk
    ("walk", or "walk_error" when multimap is not there to do it)."""
    res = vm.run(f"pagemap-dump {pid} {start} {end}" + (" --walk" if walk else ""))
    if not res.ok:
        raise LabError(f"pagemap-dump {pid} {start:#x} {end:#x} failed: {res.stderr.strip()}")
    return _json(res, "pagemap-dump")


def module_stats(vm: Guest) -> dict[str, int]:
    res = vm.run(STATS)
    if not res.ok:
        raise LabError(f"multimap stats unreadable: {res.stderr.strip()}")
    return parse_stats(res.stdout)


STATS = "cat /sys/kernel/debug/multimap/stats"


def parse_stats(text: str) -> dict[str, int]:
    """multimap's debugfs stats: the numeric "name value" lines (bug_mode is a word)."""
    pairs = (line.split() for line in text.splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}
