"""No orphan QEMU, ever.

Three layers: (1) every QEMU is started with PR_SET_PDEATHSIG=SIGKILL, so the kernel kills it
when the Python process dies, even by SIGKILL; (2) SIGTERM/SIGHUP become SystemExit so context
managers tear VMs down as on Ctrl-C; (3) an atexit hook kills whatever is still registered.

A signal is also remembered (signalled()), for two reasons.  The exception a handler raises can
be swallowed where it lands: paramiko's Channel.__del__ and ptyprocess's __del__ wrap their
close() in a bare `except: pass`, and a signal handled while one of them runs is gone; the
loops that drive a run raise it again (reraise()).  And no new QEMU starts once one came
(register() refuses it)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import threading
from types import FrameType
from typing import Any, NoReturn

from lab.errors import LabError

PR_SET_PDEATHSIG = 1
_live: dict[int, Any] = {}
_lock = threading.Lock()
_installed = False
_signalled: int | None = None  # the first SIGINT/SIGTERM/SIGHUP this process received


class Stopping(LabError):
    """A QEMU was started after the process was told to stop."""


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


def note(signum: int) -> None:
    """Remember the first stop signal (from a signal handler)."""
    global _signalled
    if _signalled is None:
        _signalled = signum


def signalled() -> int | None:
    """The stop signal this process received, if any."""
    return _signalled


def raise_for(signum: int) -> NoReturn:
    """The exception a stop signal raises: KeyboardInterrupt for SIGINT, SystemExit(128 + N)
    otherwise."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt(signal.Signals(signum).name)
    raise SystemExit(128 + signum)


def reraise() -> None:
    """In the main thread (the one signals are handled in), raise the stop signal's exception
    again if one came: the first may have been swallowed (see the module's docstring).  A no-op
    in other threads: a run's workers are stopped by the main thread."""
    if _signalled is not None and threading.current_thread() is threading.main_thread():
        raise_for(_signalled)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    note(signum)
    raise_for(signum)


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
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_signal)  # KeyboardInterrupt as before, and noted


def register(child: Any) -> None:
    install()
    with _lock:
        _live[child.pid] = child
    if _signalled is not None:  # told to stop while it started: it goes at once
        stop_now(_signalled)
        raise Stopping(f"not starting a VM: {signal.Signals(_signalled).name} received")


def unregister(child: Any) -> None:
    with _lock:
        _live.pop(child.pid, None)


def stop_now(signum: int) -> None:
    """From a signal handler: note the signal and SIGKILL every registered QEMU.  It takes no
    lock and waits for nothing, since the handler may have interrupted this very thread inside
    register() or a child's wait(); the VMs' owners and the atexit hook reap them."""
    note(signum)
    for child in list(_live.values()):  # one C call under the GIL: a consistent copy
        with contextlib.suppress(OSError):
            os.kill(child.pid, signal.SIGKILL)


def kill_all() -> None:
    """Kill every registered QEMU and reap it (not from a signal handler: see stop_now)."""
    with _lock:
        children = list(_live.values())
        _live.clear()
    for child in children:
        with contextlib.suppress(Exception):
            os.kill(child.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            child.wait()
