"""What a guest whose console stays silent is doing, in QEMU's own words, captured before the
boot is given up: QEMU's run state and where each vCPU is (``query-status``, ``info registers
-a``).  It tells a QEMU that never started the guest from firmware that never reached the
kernel, a kernel spinning with its CPUs busy, and one halted waiting for an interrupt that
never comes.  Parsing is pure (``where``); ``capture`` asks a running QEMU over QMP."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QMP_TIMEOUT_S = 5.0
CPU_HEADER = re.compile(r"^CPU#(\d+)\s*$", re.M)
X86_PC = re.compile(r"\b[RE]IP=([0-9a-f]+)")
X86_CPL = re.compile(r"\bCPL=(\d)")
X86_HLT = re.compile(r"\bHLT=(\d)")
ARM_PC = re.compile(r"\bPC=([0-9a-f]+)")
ARM_EL = re.compile(r"\bEL(\d)[th]\b")
KERNEL_HALF = 1 << 63  # x86_64 and arm64 kernels both live in the top half of the address space
FIRMWARE_END = 1 << 20  # x86 real-mode firmware (SeaBIOS, option ROMs) runs below 1 MiB


@dataclass(frozen=True)
class VCpu:
    index: int
    pc: int
    place: str  # "in the kernel", "in user space", "at the reset vector", "not started", ...
    halted: bool | None  # x86 says whether the vCPU sits in HLT; arm64 does not


def where(registers: str) -> list[VCpu]:
    """Each vCPU's program counter and what runs there, from ``info registers -a``."""
    found: list[VCpu] = []
    heads = list(CPU_HEADER.finditer(registers))
    for n, head in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(registers)
        block = registers[head.end() : end]
        if m := X86_PC.search(block):
            pc = int(m[1], 16)
            cpl = int(c[1]) if (c := X86_CPL.search(block)) else 0
            halted = bool(int(h[1])) if (h := X86_HLT.search(block)) else None
            place = _x86_place(pc, cpl)
        elif m := ARM_PC.search(block):
            pc = int(m[1], 16)
            el = int(e[1]) if (e := ARM_EL.search(block)) else 1
            halted = None
            place = _arm_place(pc, el)
        else:
            continue
        found.append(VCpu(int(head[1]), pc, place, halted))
    return found


def _x86_place(pc: int, cpl: int) -> str:
    if cpl == 3:
        return "in user space"
    if pc >= KERNEL_HALF:
        return "in the kernel"
    if pc == 0xFFF0:
        return "at the reset vector"
    if pc < FIRMWARE_END:  # SeaBIOS, option ROMs, a bzImage's real-mode setup
        return "in the firmware or real-mode setup"
    return "in early boot (paging off or identity-mapped)"


def _arm_place(pc: int, el: int) -> str:
    if el == 0:
        return "in user space"
    if pc >= KERNEL_HALF:
        return "in the kernel"
    if pc == 0:
        return "not started (a secondary CPU before PSCI CPU_ON sits at PC 0)"
    return "in early boot (MMU off)"


def summary(status: str, cpus: list[VCpu]) -> str:
    """One line: 'QEMU running; vCPU0 halted in the kernel, pc 0xffffffff81e0a3b5; ...'
    (halted or running: x86 only, arm64's registers do not say)."""
    parts = [f"QEMU {status}"]
    for cpu in cpus:
        state = {True: "halted ", False: "running ", None: ""}[cpu.halted]
        parts.append(f"vCPU{cpu.index} {state}{cpu.place}, pc {cpu.pc:#x}")
    if len(parts) == 1:
        parts.append("no vCPU state")
    return "; ".join(parts)


def process(pid: int, proc: Path = Path("/proc")) -> str:
    """What the host says of the child: its program, state and kernel wait channel, e.g.
    'qemu-system-x86_64, state S, waiting in do_sys_poll' - a child still running Python never
    became QEMU (stuck between fork and exec); state T is a stopped one."""
    base = proc / str(pid)
    try:
        exe = Path(os.readlink(base / "exe")).name
        stat = (base / "stat").read_text()
    except OSError as exc:
        return f"process {pid}: gone ({exc.strerror})"
    state = stat.rsplit(")", 1)[-1].split()[0]  # the field after "(comm)"
    wchan = ""
    with contextlib.suppress(OSError):
        wchan = (base / "wchan").read_text().strip()
    waiting = f", waiting in {wchan}" if wchan and wchan != "0" else ""
    return f"process {pid}: {exe}, state {state}{waiting}"


def capture_at(socket_path: Path, out: Path, timeout: float = QMP_TIMEOUT_S) -> str:
    """capture() through a new QMP connection to socket_path, bounded by timeout (a QEMU whose
    main loop is wedged never greets; the caller kills it next, which ends the thread); writes
    out from this thread only, so a late answer cannot overwrite it.  Returns the summary."""
    said: list[tuple[str, str]] = []

    def ask() -> None:
        qmp = None
        try:
            from qemu.qmp.legacy import QEMUMonitorProtocol

            qmp = QEMUMonitorProtocol(str(socket_path))
            qmp.connect()
            qmp.settimeout(timeout)
            said.append(capture(qmp))
        except Exception as exc:  # no socket (QEMU never got that far), a refused connection
            said.append((f"QEMU did not answer on QMP: {exc}", ""))
        finally:
            if qmp is not None:
                with contextlib.suppress(Exception):
                    qmp.close()

    asker = threading.Thread(target=ask, name="stall-capture", daemon=True)
    asker.start()
    asker.join(timeout)
    line, text = said[0] if said else (f"QEMU did not answer on QMP within {timeout:g} s", "")
    out.write_text(f"{line}\n{text}")
    return line


def record(socket_path: Path, out: Path, pid: int | None) -> str:
    """capture_at, and the host's view of the process (pid: QEMU's) appended to out: the line a
    boot retry or failure quotes, naming out."""
    seen = capture_at(socket_path, out)
    host = process(pid) if pid is not None else "no process"
    with out.open("a") as f:
        f.write(f"\nhost: {host}\n")
    return f"{seen}; {host}; QEMU's view: {out}"


def capture(qmp: Any) -> tuple[str, str]:
    """Ask QEMU (a connected QMP client) for its run state and every vCPU's registers: the
    one-line summary and the full text.  A QEMU that does not answer says so."""
    try:
        status = qmp.cmd("query-status")
        registers = qmp.cmd("human-monitor-command", **{"command-line": "info registers -a"})
    except Exception as exc:  # QMP's own errors, a dead socket
        return f"QEMU did not answer on QMP: {exc}", ""
    line = summary(str(status.get("status", "?")), where(str(registers)))
    return line, f"\nquery-status: {status}\n\ninfo registers -a:\n{registers}"
