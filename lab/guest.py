"""What the lab needs of a guest: something that runs commands and takes files.

A VM is one; the guest helpers and step executors are typed against this protocol, not VM, so
they say exactly what they use."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lab.ssh import CommandResult


class Guest(Protocol):
    def run(
        self, command: str, timeout: float = 60.0, stdin: bytes | None = None
    ) -> CommandResult: ...

    def put(self, local: Path, remote: str, mode: int = 0o644, timeout: float = 120.0) -> None: ...
