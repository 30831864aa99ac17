"""Progress messages: one callable type, so every layer can report without choosing a UI."""

from __future__ import annotations

import sys
from collections.abc import Callable

Log = Callable[[str], None]


def stderr_log(msg: str) -> None:
    print(f"remaplab: {msg}", file=sys.stderr, flush=True)


def quiet(_msg: str) -> None:
    pass
