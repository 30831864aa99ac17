"""The SSH layer's interrupt hook: a command's wait ends as soon as the hook gives a reason, with
the output so far; without a reason the command's own end or its timeout decide."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator

import pytest

from lab.errors import GuestTimeout
from lab.ssh import CommandAborted, CommandTimedOut, _pump


class FakeChannel:
    """Hands out queued stdout chunks; select() waits on a socket that never becomes ready."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sock, self.peer = socket.socketpair()

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv_ready(self) -> bool:
        return bool(self.chunks)

    def recv(self, _n: int) -> bytes:
        return self.chunks.pop(0)

    def recv_stderr_ready(self) -> bool:
        return False

    def close(self) -> None:
        self.sock.close()
        self.peer.close()


@pytest.fixture
def channels() -> Iterator[list[FakeChannel]]:
    made: list[FakeChannel] = []
    yield made
    for chan in made:
        chan.close()


def test_interrupt_ends_the_wait_with_the_output_so_far(channels: list[FakeChannel]) -> None:
    chan = FakeChannel([b"before\n"])
    channels.append(chan)
    calls: list[int] = []

    def interrupt() -> str | None:
        calls.append(1)
        return "kernel report [PANIC] boom" if len(calls) >= 2 else None

    out, err = bytearray(), bytearray()
    with pytest.raises(CommandAborted) as info:
        _pump(chan, out, err, lambda: False, "cmd", 60.0, float("inf"), interrupt)  # type: ignore[arg-type]
    assert info.value.reason == "kernel report [PANIC] boom"
    assert info.value.stdout == "before\n" and info.value.stderr == ""
    assert "stopped: kernel report [PANIC] boom" in str(info.value)


def test_without_a_reason_the_timeout_still_bounds_the_wait(channels: list[FakeChannel]) -> None:
    chan = FakeChannel([b"partial"])
    channels.append(chan)
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + 0.3
    with pytest.raises(CommandTimedOut, match=r"did not finish within 0\.3 s") as info:
        _pump(chan, out, err, lambda: False, "cmd", 0.3, deadline, lambda: None)  # type: ignore[arg-type]
    assert isinstance(info.value, GuestTimeout) and info.value.stdout == "partial"


def test_a_swallowed_stop_signal_ends_a_guest_command(
    channels: list[FakeChannel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGINT lost where it landed (lab/reaper.py) is raised again by the command's wait,
    within one poll, instead of the wait running on to its timeout."""
    from lab import reaper

    monkeypatch.setattr(reaper, "_signalled", None)
    chan = FakeChannel([b"partial\n"])
    channels.append(chan)
    polls: list[int] = []

    def a_signal_arrives() -> str | None:
        polls.append(1)
        reaper.note(signal.SIGINT)  # as the handler does, its exception swallowed
        return None

    out, err = bytearray(), bytearray()
    with pytest.raises(KeyboardInterrupt, match="raised again"):
        _pump(chan, out, err, lambda: False, "cmd", 60.0, float("inf"), a_signal_arrives)  # type: ignore[arg-type]
    assert len(polls) == 1 and bytes(out) == b"partial\n"


def test_a_stopped_command_is_quoted_short_and_its_reason_kept() -> None:
    """A map step's wrapper is 700 characters of shell: the message quotes its first line, cut,
    and ends with the reason (the kernel report)."""
    from lab.ssh import CommandAborted, shown

    wrapper = "rm -f /tmp/remaplab-map-1.fifo; mkfifo /tmp/remaplab-map-1.fifo || exit 1\n" + (
        "x" * 700
    )
    exc = CommandAborted(wrapper, "kernel report: BUG: unable to handle page fault", b"", b"")
    assert str(exc) == (
        "guest command 'rm -f /tmp/remaplab-map-1.fifo; mkfifo /tmp/remaplab-map-1.fifo || "
        "exit 1...' stopped: kernel report: BUG: unable to handle page fault"
    )
    assert shown("uname -a") == "'uname -a'"
    assert shown("y" * 100) == repr("y" * 80 + "...")
