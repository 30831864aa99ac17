"""The kernel's scripts/checkpatch.pl, taken from Debian's linux-source package (cached), run
with --strict over the module's sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lab.cache import Entry
from lab.linux_source import linux_source
from lab.log import Log, stderr_log
from lab.paths import MODULE_SRC

FILES = ("scripts/checkpatch.pl", "scripts/spelling.txt", "scripts/const_structs.checkpatch")


def checkpatch_script(log: Log = stderr_log) -> Path:
    source = linux_source()
    package, version = source.package, source.version

    def build(tmp: Path) -> list[str]:
        log(f"extracting checkpatch.pl from {package} {version} (once)")
        source.extract(tmp, FILES)
        for f in FILES:
            (tmp / package / f).rename(tmp / Path(f).name)
        shutil.rmtree(tmp / package)
        return [Path(f).name for f in FILES]

    return Entry("checkpatch", f"{package}-{version}").ensure(build, log) / "checkpatch.pl"


def sources() -> list[Path]:
    return sorted([*MODULE_SRC.glob("*.c"), *MODULE_SRC.glob("uapi/*.h")])


def run_checkpatch(files: list[Path] | None = None, log: Log = stderr_log) -> tuple[bool, str]:
    script = checkpatch_script(log=log)
    argv = [
        "perl",
        str(script),
        "--strict",
        "--no-tree",
        "--show-types",
        "--color=never",
        "--no-signoff",
        "-f",
        *[str(f) for f in (files or sources())],
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    return proc.returncode == 0, out
