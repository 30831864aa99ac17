"""Loopback port allocation for forwarded guest ports."""

from __future__ import annotations

import socket


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 right now (QEMU may still lose a race for it; callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
