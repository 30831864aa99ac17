"""The structured step log: where the time went, machine-readable.

``with step("boot", arch="x86_64"):`` records a ``start`` event and an ``end`` event (seconds,
and ``result: ok`` or ``result: error`` with the error) in the step log that is current in this
thread, if any: a JSON line each in ``steps.jsonl`` of a result folder, and a call to every
subscriber (the printed progress is one).  Code deep down (boot, SSH connect, cached builds)
calls ``step()`` without being handed a log; with no log current it costs nothing.  A hang
leaves a ``start`` without its ``end``: the last thing the lab was waiting for.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    event: str  # "start" | "end"
    step: str
    time: float  # seconds since the epoch
    depth: int  # nesting: a boot inside a scenario step is depth 1
    fields: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # end only
    result: str | None = None  # end only: "ok" | "error"
    error: str | None = None  # end only, with result "error"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


Subscriber = Callable[[Event], None]


class StepLog:
    """Events to a JSON-lines file (optional) and to subscribers; thread-safe."""

    def __init__(self, path: Path | None = None, subscribers: tuple[Subscriber, ...] = ()) -> None:
        self.path = path
        self.subscribers = list(subscribers)
        self.depth = 0
        self._lock = threading.Lock()
        if path is not None:
            path.write_text("")

    def emit(self, event: Event) -> None:
        with self._lock:
            if self.path is not None:
                with self.path.open("a") as fh:
                    fh.write(json.dumps(event.as_dict(), default=str) + "\n")
        for subscriber in self.subscribers:
            subscriber(event)


_current: ContextVar[StepLog | None] = ContextVar("remaplab_steplog", default=None)


@contextmanager
def recording(log: StepLog) -> Iterator[StepLog]:
    """Make log the current step log of this thread for the block."""
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


def current() -> StepLog | None:
    return _current.get()


@contextmanager
def step(name: str, /, **fields: Any) -> Iterator[dict[str, Any]]:
    """Record one step; the block may add result fields to the yielded dict (they go into the
    end event)."""
    log = _current.get()
    if log is None:
        yield {}
        return
    start = time.monotonic()
    log.emit(Event("start", name, time.time(), log.depth, dict(fields)))
    log.depth += 1
    extra: dict[str, Any] = {}
    try:
        yield extra
    except BaseException as exc:
        log.depth -= 1
        error = f"{type(exc).__name__}: {exc}"[:2000]
        seconds = round(time.monotonic() - start, 4)
        log.emit(
            Event("end", name, time.time(), log.depth, {**fields, **extra}, seconds, "error", error)
        )
        raise
    log.depth -= 1
    seconds = round(time.monotonic() - start, 4)
    log.emit(Event("end", name, time.time(), log.depth, {**fields, **extra}, seconds, "ok"))


def read(path: Path) -> list[dict[str, Any]]:
    """The events of a steps.jsonl file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
