"""No orphan QEMU, ever.

Three layers: (1) every QEMU is started with PR_SET_PDEATHSIG=SIGKILL, so the kernel kills it
when the Python process dies, even by SIGKILL; (2) SIGTERM/SIGHUP become SystemExit so context
managers tear VMs down as on Ctrl-C; (3) an atexit hook kills whatever is still registered.

A stop signal is also remembered (signalled(); per process: forget() clears it), for two
reasons.  The exception its handler raises can be lost where it lands: an exception never
leaves a __del__ or a weakref callback (CPython at most prints "Exception ignored"), and
paramiko's Channel.__del__ and ptyprocess's __del__ catch everything, so a signal handled while
one of them runs is silently gone.  The waits and loops that drive a run raise it again
(reraise(): guest commands, the suite's loops, the CLI's exit status, pytest's hooks).  And no
new QEMU starts once one came (register() refuses it)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import threading
from types import FrameType
from typing import Any, NoReturn

import pexpect

PR_SET_PDEATHSIG = 1
_live: dict[int, Any] = {}
_lock = threading.Lock()
_installed = False
_signalled: int | None = None  # the first SIGINT/SIGTERM/SIGHUP this process received


class Stopping(Exception):
    """A QEMU was started, off the main thread, after the process was told to stop (in the main
    thread register() raises the signal's own exception).  Not a LabError: not a lab failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"not starting a VM: {signal.Signals(signum).name} received")
        self.signum = signum


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


def forget() -> None:
    """Clear the remembered signal (a new pytest session in the same process)."""
    global _signalled
    _signalled = None


AGAIN = "raised again: it was swallowed where it arrived"


def raise_for(signum: int, again: bool = False) -> NoReturn:
    """The exception a stop signal raises: KeyboardInterrupt for SIGINT, SystemExit(128 + N)
    otherwise; again: it is raised a second time (the message says so)."""
    if signum == signal.SIGINT:
        name = signal.Signals(signum).name
        raise KeyboardInterrupt(f"{name} ({AGAIN})" if again else name)
    raise SystemExit(128 + signum)


def reraise() -> None:
    """In the main thread (the one signals are handled in), raise the stop signal's exception
    again if one came: the first may have been swallowed (see the module's docstring).  A no-op
    in other threads: a run's workers are stopped by the main thread."""
    if _signalled is not None and threading.current_thread() is threading.main_thread():
        raise_for(_signalled, again=True)


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


def remember_sigint() -> None:
    """Ctrl-C raises KeyboardInterrupt as before, and is remembered: for the CLI's own process
    (a library user's Python keeps its default handler: a Ctrl-C at a prompt would otherwise
    refuse every later VM)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_signal)


def register(child: Any) -> None:
    install()
    with _lock:
        _live[child.pid] = child
    if (signum := _signalled) is not None:  # told to stop while it started: it goes at once
        stop_now(signum)
        if threading.current_thread() is threading.main_thread():
            raise_for(signum, again=True)
        raise Stopping(signum)


def child_alive(child: Any) -> bool:
    """child.isalive(), safe when another thread reaped it first: kill_all (the main thread,
    on a signal) and the VM's owner both wait for the same QEMU, and ptyprocess raises when its
    waitpid finds the child gone.  A reaped child is not alive."""
    try:
        return bool(child.isalive())
    except pexpect.ExceptionPexpect:
        return False


def how_it_ended(child: Any) -> str:
    """A reaped pexpect child's end in words: "status N" or "killed by SIGNAME"."""
    if child.signalstatus is not None:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(child.signalstatus).name}"
        return f"killed by signal {child.signalstatus}"
    return f"status {child.exitstatus}" if child.exitstatus is not None else "status unknown"


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
