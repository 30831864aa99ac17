"""No orphan QEMU, ever.

Three layers: (1) every QEMU is started with PR_SET_PDEATHSIG=SIGKILL, so the kernel kills it
when the Python process dies, even by SIGKILL; (2) SIGTERM/SIGHUP become SystemExit so context
managers tear VMs down as on Ctrl-C; (3) an atexit hook kills whatever is still registered."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import threading
from types import FrameType
from typing import Any

PR_SET_PDEATHSIG = 1
_live: dict[int, Any] = {}
_lock = threading.Lock()
_installed = False


def make_preexec(
    parent_pid: int, stderr_path: str | None = None, death_signal: int = signal.SIGKILL
) -> Any:
    """preexec_fn for a child (QEMU; a `remaplab run` under soak gets SIGTERM, so it stops its
    own VMs and writes its reports): death_signal when the parent dies; if the parent is already
    gone, exit.  With stderr_path, the child's stderr goes to that file (QEMU's own messages,
    apart from the serial console on stdout)."""

    def preexec() -> None:
        if stderr_path is not None:
            fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(fd, 2)
            os.close(fd)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(kill_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)


def register(child: Any) -> None:
    install()
    with _lock:
        _live[child.pid] = child


def unregister(child: Any) -> None:
    with _lock:
        _live.pop(child.pid, None)


def kill_all() -> None:
    with _lock:
        children = list(_live.values())
        _live.clear()
    for child in children:
        with contextlib.suppress(Exception):
            os.kill(child.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            child.wait()
