"""Which kernel a run uses, as one value: Debian's (the default), the user's own (--kernel and
--kdir), the lab-built one (--lab-kernel PROFILE), or a kernel tree to build (source).

Every subcommand, pytest's options, the VM pool and the repro bundles carry a KernelSpec; the
options are declared once, in add_kernel_args()."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.kernel.base import Kernel
from lab.log import Log, stderr_log

# (option, argparse/pytest keywords): the one place these options are declared.
KERNEL_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--kernel", {"type": Path, "help": "bring your own kernel image (bzImage/vmlinux/Image)"}),
    ("--kdir", {"type": Path, "help": "build tree of --kernel (for modules)"}),
    (
        "--lab-kernel",
        {"metavar": "PROFILE", "help": "use the lab-built kernel (lab or kasan; built, cached)"},
    ),
)


# Building the user's kernel tree and/or config: declared only by the commands that take them
# (reproduce), in addition to KERNEL_OPTIONS.
BUILD_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "--source",
        {
            "type": Path,
            "metavar": "TREE",
            "help": "build this kernel tree (out of tree, cached) and use it",
        },
    ),
    (
        "--config",
        {
            "type": Path,
            "metavar": "FILE",
            "help": "build with this .config (plus what the lab needs to boot); names every "
            "option that did not survive olddefconfig (default tree: Debian's linux-source-6.1)",
        },
    ),
)


def add_kernel_args(add: Callable[..., Any], build: bool = False) -> None:
    """Declare --kernel, --kdir and --lab-kernel with `add`: an argparse parser's add_argument
    or a pytest option group's addoption; with build, --source and --config too."""
    for name, kwargs in KERNEL_OPTIONS + (BUILD_OPTIONS if build else ()):
        add(name, **kwargs)


def _option(get: Callable[[str], Any], name: str) -> Any:
    """An option that only some commands declare (pytest's getoption raises for the others)."""
    try:
        return get(name)
    except (ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class KernelSpec:
    image: Path | None = None
    kdir: Path | None = None
    lab: str | None = None  # lab-built kernel profile: lab, kasan
    source: Path | None = None  # a kernel tree to build with the lab profile (default "lab")
    config: Path | None = None  # the user's .config to build with (instead of the lab profile)

    def __post_init__(self) -> None:
        byo = self.image is not None or self.kdir is not None
        if byo and (self.lab is not None or self.source is not None):
            built = "--lab-kernel" if self.lab is not None else "--source"
            raise LabError(f"{built} and --kernel/--kdir exclude each other")
        if self.config is not None and (byo or self.lab is not None):
            other = "--lab-kernel" if self.lab is not None else "--kernel/--kdir"
            raise LabError(f"--config and {other} exclude each other")
        if self.config is not None and not self.config.is_file():
            raise LabError(f"--config {self.config}: no such file")
        if self.image is None and self.kdir is not None:
            raise LabError("--kdir needs --kernel IMAGE too (bring-your-own kernel)")
        if self.image is not None:  # once here, not once per scenario and arch
            from lab.kernel.byo import checked_paths

            checked_paths(self.image, self.kdir)
        if self.source is not None and not self.source.is_dir():
            raise LabError(f"--source {self.source}: not a folder (want a kernel source tree)")

    @classmethod
    def from_options(cls, get: Callable[[str], Any]) -> KernelSpec:
        """From parsed options: `get` maps an attribute name (kernel, kdir, lab_kernel) to its
        value (vars(namespace).get, or a pytest config's getoption)."""
        return cls(
            image=get("kernel"),
            kdir=get("kdir"),
            lab=get("lab_kernel"),
            source=_option(get, "source"),
            config=_option(get, "config"),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KernelSpec:
        """From as_dict() (a repro bundle's kernel.json "spec")."""

        def path(key: str) -> Path | None:
            value = data.get(key)
            return Path(value) if value else None

        return cls(
            image=path("kernel_image"),
            kdir=path("kdir"),
            lab=data.get("lab_kernel"),
            source=path("source"),
            config=path("config"),
        )

    def as_dict(self) -> dict[str, str | None]:
        return {
            "kernel_image": str(self.image) if self.image else None,
            "kdir": str(self.kdir) if self.kdir else None,
            "lab_kernel": self.lab,
            "source": str(self.source) if self.source else None,
            "config": str(self.config) if self.config else None,
        }

    @property
    def chosen(self) -> bool:
        """Whether the user chose a kernel (anything but the Debian default)."""
        return any(
            v is not None for v in (self.image, self.kdir, self.lab, self.source, self.config)
        )

    def resolve(self, arch: str, log: Log = stderr_log) -> Kernel:
        from lab.kernel.resolve import resolve_kernel

        return resolve_kernel(arch, self, log)
