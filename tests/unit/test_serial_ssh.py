"""The greeting of an SSH server met mid-session (lab/serial_ssh.py), on a real one: Debian 12's
dropbear 2022.83 in inetd mode (the guest's), recorded on a socket pair."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from lab.serial_ssh import GreetingError, Replayed, read_greeting, split_greeting

GREETING = (Path(__file__).parent / "data" / "ssh" / "dropbear-2022.83-greeting.bin").read_bytes()


def test_whole_greeting_is_ident_line_and_one_packet() -> None:
    assert GREETING.startswith(b"SSH-2.0-dropbear_2022.83\r\n")
    assert split_greeting(GREETING) == len(GREETING) == 546
    for cut in (0, 10, 26, 29, 30, 300, 545):  # inside the line, the length, the packet
        assert split_greeting(GREETING[:cut]) is None, cut
    # RFC 4253 4.2: a server may send other lines first.
    assert split_greeting(b"hello there\r\n" + GREETING) == 13 + len(GREETING)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"SSH-1.5-old\r\n" + GREETING[26:], "not an SSH 2.0 server"),
        (b"x" * 300, "no identification line in the first 255 bytes"),
        (b"SSH-2.0-x\r\n\x00\x10\x00\x00", "packet length 1048576"),
        (b"SSH-2.0-x\r\n\x00\x00\x00\x01", "packet length 1 "),
    ],
)
def test_what_is_not_a_greeting(data: bytes, error: str) -> None:
    with pytest.raises(GreetingError, match=error):
        split_greeting(data)


def _feed(sock: socket.socket, chunks: list[bytes]) -> threading.Thread:
    def send() -> None:
        for chunk in chunks:
            sock.sendall(chunk)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_read_greeting_in_pieces() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        _feed(theirs, [GREETING[:7], GREETING[7:28], GREETING[28:400], GREETING[400:]]).join()
        assert read_greeting(ours, 5.0) == GREETING


def test_read_greeting_errors() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(GREETING + b"extra")
        with pytest.raises(GreetingError, match="5 bytes after the greeting"):
            read_greeting(ours, 5.0)
    ours, theirs = socket.socketpair()
    with ours:
        theirs.sendall(GREETING[:100])
        theirs.close()
        with pytest.raises(GreetingError, match="the port closed after 100 bytes"):
            read_greeting(ours, 5.0)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(GREETING[:100])
        with pytest.raises(GreetingError, match=r"no SSH greeting within 0.2 s \(got 100 bytes\)"):
            read_greeting(ours, 0.2)


def test_replayed_gives_the_greeting_then_the_live_stream() -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        stream = Replayed(ours, GREETING)
        theirs.sendall(b"live bytes")
        got = b""
        while len(got) < len(GREETING):
            got += stream.recv(100)  # never more than asked
        assert got == GREETING
        assert stream.recv(100) == b"live bytes"
        stream.sendall(b"to the server")
        assert theirs.recv(100) == b"to the server"
        stream.settimeout(1.5)
        assert stream.gettimeout() == 1.5
        assert not stream._closed
        stream.close()
        stream.close()  # twice is fine
        assert stream._closed  # what paramiko's Transport.close() waits for
