"""The repro bundle of a ``remaplab reproduce`` run: the reproducer (source and binary), the
kernel's identity (kernel.json with the KernelSpec) and config, every crashing run's console
log and decoded reports, runs.json, and repro.sh, which reruns the same command."""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from lab.cc import copy_with_headers
from lab.errors import LabError
from lab.kernel import Kernel, KernelSpec
from lab.reproduce.outcome import CRASH, RunRecord, Summary
from lab.shscript import in_bundle, prelude

CONFIG = "user.config"  # a --config, as the bundle keeps it
# A module folder's build products are not its sources: the rerun builds them anew.
BUILD_OUTPUT = shutil.ignore_patterns(
    "*.o", "*.ko", "*.mod", "*.mod.c", ".*.cmd", "Module.symvers", "modules.order", ".tmp_*", ".git"
)


def _sources_only(bundle: Path) -> Any:
    """copytree's ignore: build products, and whatever holds the bundle (a module folder that
    is the working folder holds results/)."""
    held = bundle.resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        out = set(BUILD_OUTPUT(folder, names))
        base = Path(folder).resolve()
        return out | {n for n in names if held.is_relative_to(base / n)}

    return ignore


def kernel_args(spec: KernelSpec, bundle: Path) -> list[str]:
    """The kernel options that choose spec again (a --config is copied into the bundle)."""
    args: list[str] = []
    if spec.image is not None:
        args += ["--kernel", str(spec.image.resolve())]
    if spec.kdir is not None:
        args += ["--kdir", str(spec.kdir.resolve())]
    if spec.lab is not None:
        args += ["--lab-kernel", spec.lab]
    if spec.source is not None:
        args += ["--source", str(spec.source.resolve())]
    if spec.config is not None:
        shutil.copy(spec.config, bundle / CONFIG)
        args += ["--config", CONFIG]
    return args


def _decoded(
    records: list[RunRecord], kernel: Kernel, kos: tuple[Path, ...]
) -> dict[int, list[str]]:
    from lab.symbolize import decode_reports

    symbols = {ko.stem: ko for ko in kos}  # the user's modules: their frames decode too
    out: dict[int, list[str]] = {}
    for r in records:
        if not r.reports:
            continue
        try:
            decoded = decode_reports(r.reports, kernel, symbols)
            out[r.index] = [str(d["decoded"]) for d in decoded]
        except (LabError, OSError):
            out[r.index] = [rep.text for rep in r.reports]
    return out


def write_bundle(
    bundle: Path,
    source: Path,
    binary: Path,
    spec: KernelSpec,
    kernel: Kernel,
    options: list[str],
    records: list[RunRecord],
    summary: Summary,
    modules: tuple[Path, ...] = (),
    kos: tuple[Path, ...] = (),
    args: tuple[str, ...] = (),
) -> Path:
    """Fill bundle (created); options: the reproduce options besides --repro and the kernel's
    (--arch, --runs, ...), as argv words."""
    bundle.mkdir(parents=True, exist_ok=True)
    main = copy_with_headers(kernel.arch, source, bundle, "repro.c")  # and its "..." includes
    shutil.copy(binary, bundle / "repro")
    (bundle / "repro").chmod(0o755)
    info: dict[str, Any] = {
        "identity": kernel.identity,
        "release": kernel.release,
        "image": str(kernel.image),
        "kdir": str(kernel.kdir) if kernel.kdir else None,
        "key": kernel.key,
        "spec": spec.as_dict(),
    }
    (bundle / "kernel.json").write_text(json.dumps(info, indent=1) + "\n")
    if kernel.kdir is not None and (kernel.kdir / ".config").is_file():
        with contextlib.suppress(OSError):
            shutil.copy(kernel.kdir / ".config", bundle / "kernel.config")
    decoded = _decoded(records, kernel, kos)
    for r in records:
        if r.stdout or r.stderr:  # what the reproducer itself said, every run
            said = f"--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}\n"
            (bundle / f"run-{r.index}-output.txt").write_text(said)
        if r.outcome == CRASH:
            (bundle / f"run-{r.index}-console.log").write_text(r.console)
            text = "\n\n".join(decoded.get(r.index, r.titles))
            (bundle / f"run-{r.index}-reports.txt").write_text(text + "\n")
    (bundle / "runs.json").write_text(
        json.dumps({"summary": summary.lines(), "runs": [r.as_dict() for r in records]}, indent=1)
        + "\n"
    )
    kargs = kernel_args(spec, bundle)
    words = ["--repro", in_bundle(str(main))]
    words += [
        in_bundle(w) if i and kargs[i - 1] == "--config" else shlex.quote(w)
        for i, w in enumerate(kargs)
    ]
    words += [shlex.quote(w) for w in options]
    for n, folder in enumerate(modules, start=1):
        rel = f"modules/{n}-{folder.resolve().name}"
        shutil.copytree(
            folder, bundle / rel, ignore=_sources_only(bundle), symlinks=True, dirs_exist_ok=True
        )
        words += ["--module", in_bundle(rel)]
    after = f" -- {shlex.join(args)}" if args else ""  # the reproducer's own arguments
    script = (
        "#!/bin/sh\n"
        "# Rerun this reproduction (same reproducer, kernel and options) from anywhere; extra\n"
        "# options are appended.  Its results go where you run it (results/repro-...).\n"
        + prelude()
        + f'exec "$remaplab" reproduce {" ".join(words)} "$@"{after}\n'
    )
    (bundle / "repro.sh").write_text(script)
    (bundle / "repro.sh").chmod(0o755)
    return bundle
