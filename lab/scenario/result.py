"""What a scenario run produced: its outcome, every step's record and evidence, its crashes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    CRASH = "kernel crash"
    BOOT_FAILURE = "boot failure"
    TIMEOUT = "timeout"  # a step ran out of time; the guest still answers
    HANG = "guest hang"  # a step ran out of time and the guest answers nothing
    LOST = "lost connection"  # SSH to the guest broke while QEMU still ran
    SKIPPED = "skipped"
    BUILD_FAILURE = "build failure"  # the scenario's own module or program does not build
    SETUP_ERROR = "setup error"  # the scenario could not even be prepared (kernel, initramfs)
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM while it ran


GOOD = frozenset({Outcome.PASSED, Outcome.SKIPPED})


@dataclass
class StepRecord:
    index: int
    kind: str
    ok: bool
    seconds: float
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    console_at: int | None = None  # the console's length (bytes) when the step began


def step_at(steps: list[StepRecord], offset: int, end: int | None = None) -> StepRecord | None:
    """The step that was running when the console reached offset (a kernel report's start):
    the last one begun at or before it (steps are in order; quiet steps share a mark); None
    before the first and from end (the steps over: release, unload, health check) on.  As
    exact as the console: a late printk can land in the next step."""
    if end is not None and offset >= end:
        return None
    begun = [s for s in steps if s.console_at is not None and s.console_at <= offset]
    return begun[-1] if begun else None


BRIEF_EVIDENCE = 400  # characters of a failed step's evidence shown on a terminal


@dataclass
class Result:
    scenario: str
    arch: str
    outcome: Outcome
    seconds: float = 0.0
    step_seconds: float = 0.0
    message: str = ""
    failing_step: int | None = None
    steps: list[StepRecord] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    steps_end: int | None = None  # the console's length when the steps were over
    log_dir: str = ""
    booted: bool = False  # a VM was booted for this scenario (not a warm one reused)
    notes: list[str] = field(default_factory=list)  # e.g. "boot retried: no console output in 30 s"
    kernel: str = ""  # the kernel it ran on (Kernel.identity), once prepared

    @property
    def overhead(self) -> float:
        return max(0.0, self.seconds - self.step_seconds)

    @property
    def ok(self) -> bool:
        return self.outcome in GOOD

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["overhead"] = self.overhead
        return data

    def render(self, brief: bool = False) -> str:
        """The result for a person; brief (a terminal): the evidence as one cut line, the whole
        of it is in the result folder's result.json."""
        lines = [f"{self.scenario} [{self.arch}]: {self.outcome.value}: {self.message}"]
        lines += [f"note: {note}" for note in self.notes]
        if self.failing_step is not None:
            step = self.steps[self.failing_step] if self.failing_step < len(self.steps) else None
            if step:
                head = f"failing step {step.index} ({step.kind})"
                if self.outcome == Outcome.PASSED:  # the crash it expected stopped the step
                    head = f"step {step.index} ({step.kind}) stopped by the expected crash"
                lines.append(f"{head}: {step.detail}")
                if step.evidence and brief:
                    text = json.dumps(step.evidence, default=str)
                    where = f"{self.log_dir}/result.json" if self.log_dir else "result.json"
                    cut = f"... (all of it: {where})" if len(text) > BRIEF_EVIDENCE else ""
                    lines.append(f"evidence: {text[:BRIEF_EVIDENCE]}{cut}")
                elif step.evidence:
                    lines.append(json.dumps(step.evidence, indent=1, default=str)[:3000])
        for crash in self.crashes:
            text = crash.get("decoded") or crash["text"]
            lines += [f"kernel report: {crash['title']}{during(crash)}", text[:4000]]
        if self.log_dir:
            lines.append(f"logs: {self.log_dir}")
        return "\n".join(lines)


def during(crash: dict[str, Any]) -> str:
    """How a report's message names when it came: while a step ran (during step 0, map), after
    the steps (the release, unload or health check), else nothing."""
    step = crash.get("step")
    if step:
        return f" (during step {step['index']}, {step['kind']})"
    return " (after the steps)" if crash.get("after_steps") else ""


class StepFailed(Exception):
    """A step's expectation did not hold: what, and the evidence."""

    def __init__(self, detail: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.evidence = evidence or {}
