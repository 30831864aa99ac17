"""The guest's serial console: QEMU runs under pexpect with the serial port on its stdio; a
reader thread streams everything to a log file and an in-memory buffer that waiters watch."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pexpect

from lab.errors import GuestTimeout

READ_CHUNK = 65536


def shown_seconds(value: float) -> str:
    """A wait's bound as a person gives it: 120, 30, 1.5, 0.8 (not 0.8 shown as 1)."""
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


class Console:
    def __init__(self, child: Any, log_path: Path) -> None:
        self.child = child
        self.log_path = log_path
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self.last_output = time.monotonic()  # when the guest last wrote to its console
        self._log = log_path.open("ab", buffering=0)
        self._thread = threading.Thread(target=self._reader, name="console-reader", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        while True:
            try:
                data = self.child.read_nonblocking(READ_CHUNK, timeout=0.5)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.ExceptionPexpect, OSError, ValueError):  # EOF, or QEMU reaped
                break
            if not data:
                continue
            data = data.replace(b"\r\n", b"\n")
            self._log.write(data)
            with self._cond:
                self._buf += data
                self.last_output = time.monotonic()
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        self._log.close()

    @property
    def eof(self) -> bool:
        return self._eof

    def text(self, start: int = 0) -> str:
        with self._cond:
            return self._buf[start:].decode(errors="replace")

    def raw(self, start: int = 0) -> bytes:
        with self._cond:
            return bytes(self._buf[start:])

    def mark(self) -> int:
        with self._cond:
            return len(self._buf)

    def last_line(self) -> str:
        lines = [ln.strip() for ln in self.text().splitlines() if ln.strip()]
        return lines[-1] if lines else "(no console output)"

    def wait_for(
        self,
        pattern: str | re.Pattern[str],
        timeout: float,
        what: str,
        start: int = 0,
        fail: re.Pattern[str] | None = None,
    ) -> re.Match[str]:
        """Wait until pattern appears after offset start.  Raises GuestTimeout naming what was
        awaited, the timeout and the last console line; returns early (raising) on EOF or when
        fail matches first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                text = self._buf[start:].decode(errors="replace")
                match = regex.search(text)
                if match:
                    return match
                if fail is not None and (bad := fail.search(text)):
                    raise ConsoleFailure(bad.group(0).strip(), text)
                if self._eof:
                    raise ConsoleEOF(self.last_line_locked())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise GuestTimeout(
                        f"timed out after {shown_seconds(timeout)} s waiting for {what}; "
                        f"last console line: {self.last_line_locked()!r}"
                    )
                self._cond.wait(remaining)

    def last_line_locked(self) -> str:
        lines = [ln.strip() for ln in self._buf.decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1] if lines else "(no console output)"

    def wait_quiet(self, quiet: float, limit: float) -> bool:
        """Wait until the console has been silent for `quiet` seconds (True), or until `limit`
        seconds have passed (False): lets a kernel report that is still being printed arrive
        whole before it is cut out."""
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                now = time.monotonic()
                silent_at = self.last_output + quiet
                if now >= silent_at or self._eof:
                    return True
                if now >= deadline:
                    return False
                self._cond.wait(min(silent_at, deadline) - now)

    def wait_closed(self, timeout: float) -> bool:
        """Wait (bounded) until the console reaches EOF, i.e. QEMU has exited."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class ConsoleFailure(Exception):
    def __init__(self, line: str, text: str) -> None:
        super().__init__(line)
        self.line = line
        self.text = text


class ConsoleEOF(Exception):
    def __init__(self, last_line: str) -> None:
        super().__init__(last_line)
        self.last_line = last_line
