"""What every kernel provider hands to the rest of the lab."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Kernel:
    arch: str
    release: str  # uname -r
    image: Path  # what QEMU gets as -kernel (ELF vmlinux for PVH, bzImage, arm64 Image)
    kdir: Path | None  # build tree for out-of-tree modules (make -C kdir M=...)
    modules_dir: Path | None  # lib/modules/<release>, shared into the guest over 9p
    config: Path | None  # the kernel's .config
    identity: str  # human-readable origin, e.g. "debian linux-image-6.1.0-56-amd64 6.1.192-2"
    key: str  # content key, part of every cache key derived from this kernel

    def config_value(self, option: str) -> str | None:
        """CONFIG_FOO -> 'y' / 'm' / '"str"' / None when unset or unknown."""
        if self.config is None or not self.config.exists():
            return None
        prefix = f"{option}="
        for line in self.config.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :]
        return None
