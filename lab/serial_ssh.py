"""An SSH connection that is already half made when a snapshot is restored.

A restored TCG guest translates every code path anew, and a fresh SSH connection walks many:
slirp, TCP, dropbear's accept and fork, the new process.  So the saved guest carries one that
has done all that already: before the save, nc joins a virtio-serial port to a new connection
to the guest's own dropbear (over loopback, inside the guest), whose forked child has sent its
greeting (identification line and KEXINIT).  The host reads that greeting, keeps it with the
snapshot, and stays connected while the state is saved.  A restored QEMU's port socket is
connected before the state loads (so the guest never sees the host go away) and paramiko
talks to that dropbear child through it, reading the kept greeting first: only the key
exchange is left to do.

virtio-serial state migrates with the guest; slirp's TCP connections would not.  Guests
without the port's driver (a kernel without virtio_console) keep the SSH connection over TCP.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError

if TYPE_CHECKING:
    from lab.ssh import CommandResult
    from lab.vm import VM

PORT_NAME = "remaplab.ssh"
GREETING_LIMIT = 64 << 10  # an identification line and one KEXINIT packet are far smaller
MAX_PACKET = 35000  # RFC 4253 6.1: implementations must handle packets up to 35000 bytes

# Run over SSH in the guest to be saved: load the port's driver (from the module tree, still
# mounted), find the port by name, and join it to a new connection to the guest's own SSH
# server with nc, detached (dropbear -i itself wants a socket: it asks for its peer's address).
# Prints the device.
GUEST_START = f"""modprobe -q virtio_console 2>/dev/null
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = {PORT_NAME} ] || continue
    dev=/dev/${{p##*/}}
    setsid nc 127.0.0.1 22 <>"$dev" >&0 2>/dev/null &
    echo "$dev"
    exit 0
done
echo "no virtio port named {PORT_NAME}" >&2
exit 1"""


class GreetingError(Exception):
    """The server's greeting did not come, or is not an SSH greeting."""


def split_greeting(data: bytes) -> int | None:
    """Length of a whole greeting at the start of data (lines before the identification line,
    the identification line, then one binary packet), None while it is still incomplete.
    GreetingError when data cannot be an SSH server's greeting."""
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            if len(data) - start > 255:  # RFC 4253 4.2: lines are at most 255 bytes
                raise GreetingError("no identification line in the first 255 bytes")
            return None
        line = data[start:end]
        start = end + 1
        if line.startswith(b"SSH-"):
            if not line.startswith(b"SSH-2.0-"):
                raise GreetingError(f"not an SSH 2.0 server: {line[:40]!r}")
            break
    if len(data) < start + 4:
        return None
    (length,) = struct.unpack(">I", data[start : start + 4])
    if not 5 <= length <= MAX_PACKET:
        raise GreetingError(f"packet length {length} after the identification line")
    total = start + 4 + length
    return total if len(data) >= total else None


def read_greeting(sock: socket.socket, timeout: float) -> bytes:
    """Read the server's greeting from sock, bounded by timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    while (size := split_greeting(data)) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GreetingError(f"no SSH greeting within {timeout:g} s (got {len(data)} bytes)")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            raise GreetingError(f"the port closed after {len(data)} bytes")
        data += chunk
        if len(data) > GREETING_LIMIT:
            raise GreetingError(f"more than {GREETING_LIMIT} bytes and no whole greeting")
    if size != len(data):
        raise GreetingError(f"{len(data) - size} bytes after the greeting, before any request")
    return data


def connect_port(path: Path, timeout: float) -> socket.socket:
    """A connection to QEMU's socket of the port (QEMU listens on it)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


class Replayed:
    """A socket whose first bytes are the kept greeting: what paramiko reads from a server it
    meets mid-greeting.  Everything else goes to the real socket."""

    def __init__(self, sock: socket.socket, greeting: bytes) -> None:
        self._sock = sock
        self._pending = greeting

    def recv(self, size: int) -> bytes:
        if self._pending:
            head, self._pending = self._pending[:size], self._pending[size:]
            return head
        return self._sock.recv(size)

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    @property
    def _closed(self) -> bool:  # paramiko's Transport.close() waits while this is False
        return bool(getattr(self._sock, "_closed", True))


# -- the lab's side: save and restore (lab/snapshot.py) ------------------------------------

SOCKET = "ssh-serial.sock"  # in the VM's folder; QEMU listens on it (lab/qemu.py)
CONNECT_S = 5.0
GREETING_S = 10.0


def start_in_guest(vm: VM, timeout: float) -> tuple[socket.socket, bytes] | str:
    """Start the port's dropbear in vm's guest (to be saved) and read its greeting: the
    connected socket (keep it open until the state is saved) and the greeting, or why not."""
    started = vm.run(GUEST_START, timeout=timeout)
    if not started.ok:
        return started.stderr.strip() or f"exit {started.status}"
    try:
        sock = connect_port(vm.workdir / SOCKET, CONNECT_S)
    except OSError as exc:
        return f"QEMU's port socket: {exc}"
    try:
        return sock, read_greeting(sock, GREETING_S)
    except (OSError, GreetingError) as exc:
        sock.close()
        return f"the port's dropbear: {exc}"


def restored_port(vm: VM, greeting: bytes | None) -> socket.socket | None:
    """The restored QEMU's port socket, connected (before the state loads, so the guest never
    sees its host leave), when the snapshot kept a greeting; None otherwise or if it fails."""
    if greeting is None:
        return None
    try:
        return connect_port(vm.workdir / SOCKET, CONNECT_S)
    except OSError as exc:
        vm.log(f"{vm.options.arch}: the serial SSH port: {exc}; SSH over TCP")
        return None


def connect_restored(
    vm: VM,
    port: int,
    first: Callable[[], str],
    greeting: bytes | None,
    sock: socket.socket | None,
) -> tuple[CommandResult, str]:
    """SSH into a just-restored guest and run first: through the saved port's dropbear when
    there is one, else (or if that fails) over TCP.  Returns first's result and the way in."""
    if greeting is not None and sock is not None:
        try:
            return vm.connect_ssh(port, first, stream=Replayed(sock, greeting)), "serial"
        except LabError as exc:
            vm.failed = False
            sock.close()
            vm.log(f"{vm.options.arch}: SSH over the saved port failed ({exc}); over TCP")
    return vm.connect_ssh(port, first), "tcp"
