"""The kernel's scripts/checkpatch.pl, taken from Debian's linux-source package (cached), run
with --strict over the module's sources."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from lab.cache import Entry
from lab.errors import LabError
from lab.linux_source import linux_source
from lab.log import Log, stderr_log
from lab.paths import MODULE_SRC

FILES = ("scripts/checkpatch.pl", "scripts/spelling.txt", "scripts/const_structs.checkpatch")


def checkpatch_script(log: Log = stderr_log) -> Path:
    source = linux_source()
    package, version = source.package, source.version

    def build(tmp: Path) -> list[str]:
        log(f"extracting checkpatch.pl from {package} {version} (once)")
        deb, inner = source.download(), source.tarball
        fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        assert fsys.stdout is not None
        with tarfile.open(fileobj=fsys.stdout, mode="r|") as outer:
            for member in outer:
                if member.name != inner:
                    continue
                stream = outer.extractfile(member)
                if stream is None:
                    break
                with tarfile.open(fileobj=stream, mode="r|xz") as src:
                    wanted = {f"{package}/{f}" for f in FILES}
                    for item in src:
                        if item.name in wanted:
                            data = src.extractfile(item)
                            assert data is not None
                            out = tmp / Path(item.name).name
                            out.write_bytes(data.read())
                            wanted.discard(item.name)
                            if not wanted:
                                break
                break
        fsys.stdout.close()
        fsys.kill()
        fsys.wait()
        missing = [f for f in FILES if not (tmp / Path(f).name).exists()]
        if missing:
            raise LabError(f"{package}: {', '.join(missing)} not found in the source tarball")
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
