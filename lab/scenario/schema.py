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
from lab.errors import shown
from lab.limits import MAX_MEMORY_MIB, MAX_SMP, MEMORY, memory_problem
from lab.physmem import parse_size
from lab.profiles import arches as known_arches

Action = Literal[
    "fork", "munmap-part", "mremap-grow", "mremap-move", "close", "mprotect-write", "readback"
]
Requirement = Literal["cma", "nocma", "kasan", "nokasan", "debug_vm", "nodebug_vm", "multimap"]
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
        raise ValueError(f"unknown arch {shown(value)}: choose from {', '.join(known_arches())}")
    return value


ArchName = Annotated[str, AfterValidator(_known_arch)]  # an arch with a QEMU profile
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Limits: far above any real scenario, so that a wrong number is refused at load time, with the
# limit in the message, instead of failing later in QEMU or in the guest.
MAX_PAGES = 1 << 20  # 4 GiB of 4 KiB pages per mapping
MAX_STEPS = 1000


def _no_nul(value: str) -> str:
    if "\0" in value:  # nothing the lab hands to a guest (argv, shell, path) can hold one
        raise ValueError(f"a NUL character at offset {value.index(chr(0))}")
    return value


NoNul = AfterValidator(_no_nul)
Text = Annotated[str, Field(max_length=4096), NoNul]
# strict: YAML has typed numbers, so `pages: true` or `pages: "12"` is a mistake, not a 1 or a 12
Count = Annotated[int, Field(ge=0, le=MAX_PAGES, strict=True)]
Status = Annotated[int, Field(ge=0, le=255, strict=True)]  # a shell's $? (128+N: signal N)


def _memory(value: str) -> str:
    problem = memory_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# The pattern is for the exported JSON schema; the check, with its own words, is _memory's.
Memory = Annotated[
    str, Field(json_schema_extra={"pattern": f"^{MEMORY.pattern}$"}), AfterValidator(_memory)
]
ParamValue = Annotated[int, Field(ge=-(1 << 63), lt=1 << 64)] | Text  # true: 1, as the kernel
Params = Annotated[
    dict[Annotated[str, Field(pattern=r"^\w{1,64}$")], ParamValue], Field(max_length=64)
]


class Boot(Strict):
    memory: Memory = "1G"
    smp: Annotated[int, Field(ge=1, le=MAX_SMP, strict=True)] = 2
    append: Annotated[tuple[Text, ...], Field(max_length=64)] = ()


class Module(Strict):
    load: bool = True
    params: Params = Field(default_factory=dict)


RelPath = Annotated[
    str, Field(min_length=1, max_length=4096), NoNul
]  # relative to the scenario file
ModName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MAX_MAP_BYTES = MAX_PAGES * 4096
SIZE = re.compile(r"[0-9]{1,13}[KMG]?")


def _size(value: str) -> str:
    if not SIZE.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is no size: bytes, or a number with K, M or G such as 64K"
        )
    return value


# The pattern is for the exported JSON schema; the check, with its own words, is _size's.
SizeText = Annotated[
    str, Field(json_schema_extra={"pattern": f"^{SIZE.pattern}$"}), AfterValidator(_size)
]


def size_bytes(value: int | str) -> int:
    """A size as bytes: an int, or a string like "64K", "1M", "4096"."""
    return value if isinstance(value, int) else parse_size(value)


class ModuleSpec(Strict):
    """A module loaded after boot, before the steps (unloaded in reverse after them): an
    out-of-tree module folder built for the run's kernel, or a module of the guest kernel."""

    source: RelPath | None = None  # a folder with a Kbuild or Makefile
    name: ModName | None = None  # modprobe NAME
    params: Params = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_of(self) -> ModuleSpec:
        if (self.source is None) == (self.name is None):
            raise ValueError("a module is either {source: DIR} or {name: MODULE}")
        return self


class ProgramStep(Strict):
    """A C program of the user's, compiled statically for the arch, run in the guest."""

    source: RelPath  # a .c file
    args: Annotated[tuple[Text, ...], Field(max_length=256)] = ()
    cflags: Annotated[tuple[Text, ...], Field(max_length=64)] = ()
    status: Status | None = 0  # None: any status
    output: Regex | None = None  # regex that its stdout must match
    timeout: Annotated[float, Field(gt=0, le=3600)] = 60
    hold: Name | None = None  # it calls remaplab_hold(NAME, ...): check the mapping by name


class RunStep(Strict):
    command: Annotated[str, Field(min_length=1, max_length=65536), NoNul]
    status: Status | None = 0  # None: any status
    output: Regex | None = None  # regex that stdout must match
    timeout: Annotated[float, Field(gt=0, le=3600)] = 60


DeviceAction = Literal["fork", "munmap-part", "mremap-move", "close", "mprotect-write"]
MULTIMAP_ONLY = ("backing", "mapping", "pages", "private_write")


class MapStep(Strict):
    """A multimap buffer (backing, mapping, pages; offset and length in pages), or with device,
    any device node or file mapped by the lab's holder (length and offset in bytes: 4096, "64K",
    "1M")."""

    device: Annotated[str, Field(pattern=r"^/", max_length=4096), NoNul] | None = None
    backing: Backing = "pages"
    mapping: Mapping = "remap"
    pages: Count = 16
    private: bool = False
    private_write: bool = False
    offset: Annotated[int, Field(strict=True)] | SizeText = 0
    length: Annotated[int, Field(strict=True)] | SizeText = 0
    actions: Annotated[tuple[Action, ...], Field(max_length=64)] = ()
    # Expect a failure instead of a mapping: the errno, and optionally where it happens.
    errno: Errno | None = None
    stage: Literal["open", "configure", "mmap"] | None = None
    name: Name = "m"
    # seconds for the holder to map, write and report (an expected oops in the driver's mmap
    # leaves it hanging: a short one ends such a step sooner)
    timeout: Annotated[float, Field(gt=0, le=3600)] = 120

    @model_validator(mode="after")
    def _device_or_multimap(self) -> MapStep:
        if self.device is None:
            for field in ("offset", "length"):
                value = getattr(self, field)
                if isinstance(value, str) or not 0 <= value <= MAX_PAGES:
                    raise ValueError(
                        f"{field}: a page count from 0 to {MAX_PAGES} for a multimap map "
                        f"(sizes such as 64K are for device maps), got {shown(value)}"
                    )
            return self
        wrong = [f for f in MULTIMAP_ONLY if f in self.model_fields_set]
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: for multimap maps, not for a device map")
        length, offset = size_bytes(self.length), size_bytes(self.offset)
        if not 0 < length <= MAX_MAP_BYTES or length % 4096:
            raise ValueError(
                f"length: a device map needs a length, a multiple of 4096 bytes up to "
                f"{MAX_MAP_BYTES >> 30}G, got {shown(self.length)}"
            )
        if offset % 4096 or offset > 1 << 50:
            raise ValueError(f"offset: page aligned bytes, got {shown(self.offset)}")
        allowed = set(DeviceAction.__args__)  # type: ignore[attr-defined]
        odd = [a for a in self.actions if a not in allowed]
        if odd:
            raise ValueError(f"actions {odd}: a device map takes {', '.join(sorted(allowed))}")
        if self.stage == "configure":
            raise ValueError("stage: a device map fails at open or mmap")
        return self

    @property
    def foreign(self) -> bool:
        return self.device is not None

    @property
    def first_page(self) -> int:
        """The index of the first page mapped: multimap's offset (pages), or 0 for a device
        map (its tokens are numbered from the start of the mapping)."""
        return 0 if self.device is not None else size_bytes(self.offset)


class CheckStep(Strict):
    of: Name = "m"
    physically_contiguous: bool | None = None
    distinct_pages: Count | None = None
    # multimap only (refused for other mappings); unset means true
    pfns_match_module: bool | None = None  # page-table walk == module's PFN list
    contents_match: bool | None = None  # data written through the mapping == kernel readback
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
    "program": ProgramStep,
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
    modules: Annotated[tuple[ModuleSpec, ...], Field(max_length=32)] = ()
    steps: Annotated[tuple[Step, ...], Field(min_length=1, max_length=MAX_STEPS)]
    expect: Expect = Expect()
    timeout: Annotated[float, Field(gt=0, le=3600)] = 300

    @field_validator("arches")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v) or not v:
            raise ValueError("arches must be a non-empty list without repeats")
        return v
