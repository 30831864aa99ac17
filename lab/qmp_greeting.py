"""Whether a QEMU's QMP server answers, within a bound.

qemu.qmp's synchronous ``connect()`` takes no timeout: a QEMU whose main loop never accepts
(the kernel still queues the connection) or never greets would hold its caller forever.  Asking
first, on a plain socket with a timeout, bounds that wait; a QEMU that greeted a moment ago
answers qemu.qmp's own connection at once."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from lab.errors import LabError

GREETING = b'{"QMP"'


def wait_for_greeting(path: Path, timeout: float) -> None:
    """Return once the QMP server at the unix socket path has sent its greeting; LabError when
    it cannot be reached or says nothing within timeout seconds."""
    deadline = time.monotonic() + timeout
    received = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            while not received.lstrip().startswith(GREETING) and len(received) < len(GREETING) + 8:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(4096)
                if not chunk:
                    raise LabError(f"QMP at {path} closed the connection before its greeting")
                received += chunk
    except TimeoutError:
        raise LabError(f"QMP at {path} sent no greeting within {timeout:g} s") from None
    except OSError as exc:
        raise LabError(f"QMP at {path} cannot be reached: {exc.strerror or exc}") from None
    if not received.lstrip().startswith(GREETING):
        raise LabError(f"QMP at {path} did not greet as QMP does: {received[:40]!r}")


def open_qmp(path: Path, timeout: float) -> Any:
    """A qemu.qmp (legacy, synchronous) connection to the QMP server at path, once it greeted
    within timeout; its commands then time out after 10 s."""
    from qemu.qmp.legacy import QEMUMonitorProtocol

    wait_for_greeting(path, timeout)
    qmp = QEMUMonitorProtocol(str(path))
    qmp.connect()
    qmp.settimeout(10.0)
    return qmp
