"""The scenario format, as pydantic models (the schema is data: `remaplab schema` prints it).

A scenario: name, description, arches, requirements, boot settings, module parameters, ordered
steps, and what the kernel must look like afterwards.  Step kinds are one table, STEP_KINDS:
adding a kind is one model here and one executor in lab/scenario/steps.py."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from lab.combos import Backing, Mapping, Source
from lab.profiles import arches as known_arches

Action = Literal[
    "fork", "munmap-part", "mremap-grow", "mremap-move", "close", "mprotect-write", "readback"
]
Requirement = Literal["cma", "nocma", "kasan", "debug_vm", "multimap"]
Errno = Annotated[str, Field(pattern=r"^E[A-Z0-9]+$")]


def _compiles(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str, Field(max_length=1000), AfterValidator(_compiles)]


def _known_arch(value: str) -> str:
    if value not in known_arches():
        raise ValueError(f"unknown arch {value!r}: choose from {', '.join(known_arches())}")
    return value


ArchName = Annotated[str, AfterValidator(_known_arch)]  # an arch with a QEMU profile
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Limits: far above any real scenario, so that a wrong number is refused at load time, with the
# limit in the message, instead of failing later in QEMU or in the guest.
MAX_PAGES = 1 << 20  # 4 GiB of 4 KiB pages per mapping
MAX_STEPS = 1000
MAX_MEMORY_MIB = 64 * 1024
MIN_MEMORY_MIB = 128
Text = Annotated[str, Field(max_length=4096)]
Count = Annotated[int, Field(ge=0, le=MAX_PAGES)]


def _memory(value: str) -> str:
    mib = int(value[:-1]) * (1024 if value.endswith("G") else 1)
    if not MIN_MEMORY_MIB <= mib <= MAX_MEMORY_MIB:
        raise ValueError(
            f"{value} is outside {MIN_MEMORY_MIB}M .. {MAX_MEMORY_MIB // 1024}G of guest memory"
        )
    return value


Memory = Annotated[str, Field(pattern=r"^[0-9]{1,9}[MG]$"), AfterValidator(_memory)]
ParamValue = Annotated[int, Field(ge=-(1 << 63), lt=1 << 64)] | Text
Params = Annotated[
    dict[Annotated[str, Field(pattern=r"^\w{1,64}$")], ParamValue], Field(max_length=64)
]


class Boot(Strict):
    memory: Memory = "1G"
    smp: Annotated[int, Field(ge=1, le=8)] = 2
    append: Annotated[tuple[Text, ...], Field(max_length=64)] = ()


class Module(Strict):
    load: bool = True
    params: Params = Field(default_factory=dict)


class RunStep(Strict):
    command: Annotated[str, Field(min_length=1, max_length=65536)]
    status: int | None = 0  # None: any status
    output: Regex | None = None  # regex that stdout must match
    timeout: Annotated[float, Field(gt=0, le=3600)] = 60


class MapStep(Strict):
    backing: Backing = "pages"
    mapping: Mapping = "remap"
    pages: Count = 16
    private: bool = False
    private_write: bool = False
    offset: Count = 0
    length: Count = 0
    actions: Annotated[tuple[Action, ...], Field(max_length=64)] = ()
    # Expect a failure instead of a mapping: the errno, and optionally where it happens.
    errno: Errno | None = None
    stage: Literal["open", "configure", "mmap"] | None = None
    name: Name = "m"


class CheckStep(Strict):
    of: Name = "m"
    physically_contiguous: bool | None = None
    distinct_pages: Count | None = None
    pfns_match_module: bool = True  # page-table walk == module's PFN list
    contents_match: bool = True  # data written through the mapping == kernel readback
    pagemap: Literal["visible", "hole"] | None = None
    physical: bool = False  # guest-physical witness read from outside the guest
    source: Source | None = None
    runs: Count | None = None


class ReleaseStep(Strict):
    of: Name = "m"


class ReloadStep(Strict):
    params: Params = Field(default_factory=dict)
    expect_refused: bool = False  # rmmod must fail (something still open or mapped)


# Every step kind: its YAML key and its model.  A step is a mapping with exactly one of these.
STEP_KINDS: dict[str, type[Strict]] = {
    "run": RunStep,
    "map": MapStep,
    "check": CheckStep,
    "release": ReleaseStep,
    "reload_module": ReloadStep,
}


class StepBase(Strict):
    """Exactly one of the step kinds (the fields are made from STEP_KINDS)."""

    @model_validator(mode="after")
    def _one_kind(self) -> StepBase:
        kinds = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a step is exactly one of {', '.join(STEP_KINDS)}"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def body(self) -> Any:
        """The step's own model (a RunStep, a MapStep, ...)."""
        return getattr(self, self.kind)


if TYPE_CHECKING:
    Step = StepBase
else:
    Step = create_model(
        "Step",
        __base__=StepBase,
        __doc__=StepBase.__doc__,
        **{kind: (model | None, None) for kind, model in STEP_KINDS.items()},
    )


class Crash(Strict):
    kind: Regex | None = None  # e.g. "KASAN", "BUG", "WARNING"; a regex: "REFCOUNT|KASAN"
    title: Regex | None = None  # regex on the report title


class Expect(Strict):
    kernel: Literal["clean"] | Crash = "clean"
    stats_zero: bool = True  # multimap's live buffers/pages/VMAs/files back to 0
    meminfo_tolerance_kb: Annotated[int, Field(ge=0, le=MAX_MEMORY_MIB * 1024)] = (
        8192  # MemAvailable, caches dropped
    )


class Scenario(Strict):
    name: Name
    description: Annotated[str, Field(max_length=4096)]
    arches: tuple[ArchName, ...] = Field(default_factory=known_arches)
    requires: Annotated[tuple[Requirement, ...], Field(max_length=16)] = ()
    # kernel options that must be built in or modular, e.g. CONFIG_COMEDI_TEST for its driver
    requires_config: Annotated[
        tuple[Annotated[str, Field(pattern=r"^CONFIG_[A-Z0-9_]{1,100}$")], ...],
        Field(max_length=64),
    ] = ()
    boot: Boot = Boot()
    module: Module = Module()
    steps: Annotated[tuple[Step, ...], Field(min_length=1, max_length=MAX_STEPS)]
    expect: Expect = Expect()
    timeout: Annotated[float, Field(gt=0, le=3600)] = 300

    @field_validator("arches")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v) or not v:
            raise ValueError("arches must be a non-empty list without repeats")
        return v
