"""The structured step log: start and end events, nesting, errors, subscribers, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lab.steplog import Event, StepLog, read, recording, step


def test_without_a_log_steps_cost_nothing() -> None:
    with step("boot", arch="x86_64") as extra:
        extra["x"] = 1  # nowhere to go, no error


def test_events_go_to_the_file_and_subscribers(tmp_path: Path) -> None:
    seen: list[Event] = []
    log = StepLog(tmp_path / "steps.jsonl", (seen.append,))
    with recording(log), step("scenario", name="demo"), step("boot", arch="arm64") as extra:
        extra["boot_seconds"] = 1.5
    events = read(tmp_path / "steps.jsonl")
    assert [(e["event"], e["step"], e["depth"]) for e in events] == [
        ("start", "scenario", 0),
        ("start", "boot", 1),
        ("end", "boot", 1),
        ("end", "scenario", 0),
    ]
    assert events[2]["fields"] == {"arch": "arm64", "boot_seconds": 1.5}
    assert events[2]["result"] == "ok" and events[2]["seconds"] >= 0
    assert [e.step for e in seen] == ["scenario", "boot", "boot", "scenario"]


def test_an_error_ends_the_step_with_it(tmp_path: Path) -> None:
    log = StepLog(tmp_path / "steps.jsonl")
    with recording(log), pytest.raises(TimeoutError), step("ssh-connect", port=2222):
        raise TimeoutError("no banner within 30 s")
    end = read(tmp_path / "steps.jsonl")[-1]
    assert end["result"] == "error" and end["error"] == "TimeoutError: no banner within 30 s"
    assert log.depth == 0


def test_a_hang_leaves_a_start_without_an_end(tmp_path: Path) -> None:
    log = StepLog(tmp_path / "steps.jsonl")
    inside, release = threading.Event(), threading.Event()

    def stuck() -> None:
        with recording(log), step("scenario-step", index=3, kind="run"):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=stuck)
    t.start()
    try:
        assert inside.wait(10), "the step body never ran"
        events = read(tmp_path / "steps.jsonl")
        assert [(e["event"], e["step"]) for e in events] == [("start", "scenario-step")]
    finally:
        release.set()
        t.join()


def test_each_thread_has_its_own_current_log(tmp_path: Path) -> None:
    logs = {a: StepLog(tmp_path / f"{a}.jsonl") for a in ("x86_64", "arm64")}

    def work(arch: str) -> None:
        with recording(logs[arch]), step("boot", arch=arch):
            pass

    threads = [threading.Thread(target=work, args=(a,)) for a in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for arch in logs:
        assert {e["fields"]["arch"] for e in read(tmp_path / f"{arch}.jsonl")} == {arch}
