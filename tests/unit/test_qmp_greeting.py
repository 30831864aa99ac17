"""A bounded wait for a QMP greeting, against real unix-socket servers that greet, never
accept, accept and say nothing, or say something else."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.qmp_greeting import wait_for_greeting

# What QEMU 7.2 sends first (recorded here from qemu-system-x86_64 -machine none's QMP socket).
QEMU_GREETING = (
    b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": '
    b'"Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}\r\n'
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    path = tmp_path / "qmp.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    yield path, listener
    listener.close()


def _serve(listener: socket.socket, send: bytes, hold_s: float = 0.0) -> threading.Thread:
    def run() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(BrokenPipeError):  # the client may go once it has enough
            for n in range(0, len(send), 7):  # in pieces, as a stream may arrive
                conn.sendall(send[n : n + 7])
            if hold_s:
                time.sleep(hold_s)  # a server that keeps the connection open, silent

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_returns_once_qemu_greets(server: tuple[Path, socket.socket]) -> None:
    path, listener = server
    _serve(listener, QEMU_GREETING)
    wait_for_greeting(path, 5.0)


def test_a_server_that_never_accepts_is_bounded(server: tuple[Path, socket.socket]) -> None:
    path, _listener = server  # listening: connect() succeeds into the backlog, nobody accepts
    start = time.monotonic()
    with pytest.raises(LabError, match=r"sent no greeting within 0.3 s"):
        wait_for_greeting(path, 0.3)
    assert time.monotonic() - start < 3.0


def test_a_silent_server_is_bounded(server: tuple[Path, socket.socket]) -> None:
    path, listener = server
    _serve(listener, b"", hold_s=5.0)
    with pytest.raises(LabError, match=r"sent no greeting within 0.3 s"):
        wait_for_greeting(path, 0.3)


def test_no_socket_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"cannot be reached: No such file or directory"):
        wait_for_greeting(tmp_path / "qmp.sock", 1.0)


def test_a_server_that_is_not_qmp(server: tuple[Path, socket.socket]) -> None:
    path, listener = server
    _serve(listener, b"SSH-2.0-dropbear_2022.83\r\n")
    with pytest.raises(LabError, match=r"did not greet as QMP does: b'SSH-2.0"):
        wait_for_greeting(path, 2.0)


def test_a_server_that_hangs_up(server: tuple[Path, socket.socket]) -> None:
    path, listener = server
    _serve(listener, b"")
    with pytest.raises(LabError, match=r"closed the connection before its greeting"):
        wait_for_greeting(path, 2.0)
