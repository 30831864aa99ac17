"""Repro bundles: everything a failed scenario needs to be understood and rerun elsewhere.

A bundle is ``<log dir>/bundle``: the scenario YAML (``NAME.yaml``), the kernel's identity and
config, QEMU's argv, the console log, the decoded crash reports, the result, multimap and the
guest tools as they ran, and ``repro.sh``, which reruns the scenario (``remaplab repro``) on the
same kernel or, with ``--kernel/--kdir`` or ``--lab-kernel``, on another one, and says whether
the failure came back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from lab.build import build_module, build_tools, install_tools
from lab.cc import local_headers
from lab.errors import LabError
from lab.kernel import Kernel
from lab.log import quiet
from lab.profiles import arches
from lab.scenario.load import Loaded
from lab.scenario.verdict import finding_line
from lab.shscript import prelude

REPRO_SH = """#!/bin/sh
# Rerun scenario {name} on {arch} as it failed on {identity}.
# Another kernel: ./repro.sh --kernel IMAGE --kdir BUILD_DIR   (or --lab-kernel lab|kasan)
# Exit 0 when the failure is reproduced (same crash title, or same failing step and finding),
# 1 when not.
{prelude}exec "$remaplab" repro "$here" "$@"
"""


# What the runner leaves in a result folder that a bundle carries: the console excerpt, the VM's
# whole console, QEMU's argv and stderr, the structured step log.
EVIDENCE = ("console.log", "console-vm.log", "qemu-argv.txt", "qemu-stderr.log", "steps.jsonl")


# What differs between two runs of the same failure: hex addresses, large numbers (PFNs), PIDs,
# timings; never an exit status (139 is not 134).
_VARYING = re.compile(
    r"(?i)(?<=\bpid )\d+|(?<=\bpid=)\d+|(?<='pid': )\d+"
    r"|0x[0-9a-f]+|\b\d+\.\d+\b|(?<!status )\b\d{3,}\b"
)


def signature(result: dict[str, Any]) -> str:
    """What "the same failure" means: the first crash title, else outcome, failing step and
    the first line of that step's finding with what varies between runs made N (a program
    that does not compile is not one that exits 2)."""
    crashes = result.get("crashes") or []
    if crashes:
        return f"crash: {crashes[0]['title']}"
    step = result.get("failing_step")
    if step is None or result["outcome"] != "failed":  # a timeout, hang, lost guest: as such
        return str(result["outcome"])
    head = f"{result['outcome']} at step {step}"
    found: dict[str, Any] = next(
        (s for s in result.get("steps") or [] if s.get("index") == step), {}
    )
    first = finding_line(str(found.get("detail") or ""), most=10_000)
    if not first:
        return head
    return f"{head}: {_VARYING.sub('N', first)[:300]}"


def same_failure(before: str, after: str, same_kernel: bool) -> tuple[bool, str]:
    """Whether a rerun's signature is the original's, and how it compares.  On another kernel
    the function in a crash title may differ (other inlining): a specific crash type (the title
    up to " in ", with a ':' such as "BUG: Bad page state" or "KASAN: use-after-free Read")
    still counts, and the answer says so."""
    if before == after:
        return True, "reproduced"
    if not before.startswith("crash: ") and ": " not in before and after.startswith(f"{before}: "):
        return True, "reproduced (the original's signature names no finding)"  # an older bundle
    if before.endswith(":") and after.startswith(f"{before} "):  # older: the heading alone
        return True, "reproduced (the original's signature names the finding's heading only)"
    head_b, head_a = before.split(" in ", 1)[0], after.split(" in ", 1)[0]
    crash = before.startswith("crash: ")  # a step's finding is compared whole
    if crash and not same_kernel and head_b == head_a and head_b.count(":") >= 2:
        return (
            True,
            f"reproduced on another kernel: same {head_b.removeprefix('crash: ')}, "
            "title's function differs",
        )
    return False, "not reproduced"


def _program_headers(loaded: Loaded, arch: str) -> list[str]:
    """The files its programs include with "..." (gcc -MM), relative to its folder."""
    out: list[str] = []
    for st in loaded.scenario.steps:
        if st.kind != "program" or Path(st.body.source).is_absolute():
            continue
        source = loaded.folder / st.body.source
        with contextlib.suppress(LabError, OSError):  # no compiler, no file: the rest still goes
            headers = local_headers(arch, source, st.body.cflags)
            out += [os.path.relpath(h, loaded.folder) for h in headers]
    return out


def _copy_sources(loaded: Loaded, bundle: Path, arch: str) -> dict[str, Any]:
    """The scenario's own sources (module folders, programs and the files those include),
    copied so that its relative paths resolve from bundle/SOURCES_BASE as they did from its
    folder.  An absolute path is not copied: the scenario names it, and a rerun reads it there.
    What cannot be copied is listed ("not_copied"), never the end of the bundle."""
    rels = [r for r in loaded.sources() if not Path(r).is_absolute()]
    rels += _program_headers(loaded, arch)
    ups = max((Path(r).parts.count("..") for r in rels), default=0)
    base = Path("sources", *(["_"] * ups))
    (bundle / base).mkdir(parents=True, exist_ok=True)  # "_/.." resolves only when "_" exists
    not_copied: list[str] = []
    for rel in rels:
        src = (loaded.folder / rel).resolve()
        dst = Path(os.path.normpath(bundle / base / rel))
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():  # links stay links: a loop or a kernel tree is not followed
                shutil.copytree(src, dst, True, _ignore(bundle), dirs_exist_ok=True)
            elif src.is_file():
                shutil.copy2(src, dst)
        except (OSError, RecursionError, shutil.Error) as exc:  # a FIFO, an unreadable file
            not_copied.append(f"{rel}: {exc}"[:500])
    copied: dict[str, Any] = {
        "scenario_dir": str(loaded.folder.resolve()),
        "sources_base": str(base),
    }
    if not_copied:
        copied["not_copied"] = not_copied
    return copied


def _ignore(bundle: Path) -> Callable[[str, list[str]], set[str]]:
    """Build products and hidden files, and whatever holds the bundle itself (a module folder
    with the results inside it: `source: ..` run from the repository)."""
    inside = bundle.resolve()
    products = shutil.ignore_patterns("*.o", "*.ko", ".*")

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = set(products(folder, names))
        for name in names:
            path = Path(folder, name)
            if path.is_dir() and not path.is_symlink() and inside.is_relative_to(path.resolve()):
                skip.add(name)
        return skip

    return ignore


def write_bundle(
    log_dir: Path,
    loaded: Loaded,
    result: dict[str, Any],
    kernel: Kernel,
    kernel_spec: dict[str, str | None],
    argv: list[str] | None,
    kos: list[Path] | None = None,
) -> Path:
    """The repro bundle of a failed result; kos: the scenario's own built modules, kept in
    bin/ with their debug info (`remaplab triage -v --module bin/X.ko crash-0.txt` offline)."""
    bundle = log_dir / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    (bundle / "bin").mkdir(parents=True)
    (bundle / f"{result['scenario']}.yaml").write_text(loaded.text)
    copied = _copy_sources(loaded, bundle, result["arch"])
    (bundle / "scenario.json").write_text(json.dumps(copied, indent=1))
    (bundle / "result.json").write_text(json.dumps(result, indent=1, default=str))
    cmdline = ""
    if argv and "-append" in argv:
        cmdline = argv[argv.index("-append") + 1]
    (bundle / "kernel.json").write_text(
        json.dumps(
            {
                "arch": kernel.arch,
                "identity": kernel.identity,
                "release": kernel.release,
                "image": str(kernel.image),
                "kdir": str(kernel.kdir) if kernel.kdir else None,
                "key": kernel.key,
                "cmdline": cmdline,
                "spec": kernel_spec,
            },
            indent=1,
        )
    )
    if kernel.config is not None and kernel.config.exists():
        shutil.copy(kernel.config, bundle / "kernel.config")
    kept = [log_dir / n for n in EVIDENCE] + sorted(log_dir.glob("crash-*.txt"))
    for path in kept:
        if path.exists():  # written by the runner: consoles, QEMU stderr, steps, reports
            shutil.copy(path, bundle / path.name)
    if argv:  # over the VM's own: a restore's argv, or one whose kernel the lab put into RAM
        (bundle / "qemu-argv.txt").write_text(shlex.join(argv) + "\n")
    for ko in kos or []:
        if ko.is_file():
            shutil.copy(ko, bundle / "bin" / ko.name)
    with contextlib.suppress(LabError):
        if kernel.kdir is not None:
            shutil.copy(build_module(kernel, log=quiet).ko, bundle / "bin" / "multimap.ko")
        install_tools(build_tools(kernel.arch, log=quiet), bundle / "bin")
    (bundle / "signature.txt").write_text(signature(result) + "\n")
    repro = bundle / "repro.sh"
    repro.write_text(
        REPRO_SH.format(
            name=result["scenario"],
            arch=kernel.arch,
            identity=kernel.identity,
            prelude=prelude(),
        )
    )
    repro.chmod(0o755)
    return bundle


class _Crash(BaseModel):
    title: str


class _Step(BaseModel):
    index: int | None = None
    detail: str | None = None


class _BundleResult(BaseModel):
    """The fields of result.json a rerun reads (signature(), the scenario's file name)."""

    scenario: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a name, never a path
    outcome: str
    failing_step: int | None = None
    crashes: list[_Crash] = []
    steps: list[_Step] = []


class _KernelInfo(BaseModel):
    arch: str
    identity: str
    key: str
    spec: dict[str, str | None]


class _ScenarioInfo(BaseModel):
    scenario_dir: str
    sources_base: str


def _checked(path: Path, model: type[BaseModel]) -> dict[str, Any]:
    """path's JSON object, its fields checked by model; LabError naming the file and field."""
    try:
        data = json.loads(path.read_text())
        model.model_validate(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabError(f"{path}: not a readable JSON file ({exc})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise LabError(f"{path}: {where}: {err['msg']}") from None
    assert isinstance(data, dict)  # model_validate refused anything else
    return data


def bundle_base(bundle: Path) -> Path | None:
    """Where a bundle's scenario finds its relative sources: its original folder while that
    exists, else the copies in the bundle."""
    if not (bundle / "scenario.json").is_file():
        return None
    info = _checked(bundle / "scenario.json", _ScenarioInfo)
    original = Path(info["scenario_dir"])
    if original.is_dir():
        return original
    return bundle / str(info["sources_base"])


def read_bundle(bundle: Path) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """(result, kernel info, scenario file) of a bundle, or a clear error."""
    bundle = bundle.expanduser()
    missing = [n for n in ("result.json", "kernel.json") if not (bundle / n).is_file()]
    if missing and (bundle / "runs.json").is_file():
        raise LabError(
            f"{bundle} is a `remaplab reproduce` bundle, not a scenario's: rerun it with its "
            f"repro.sh ({bundle / 'repro.sh'})"
        )
    if missing:
        raise LabError(f"{bundle} is not a repro bundle: {', '.join(missing)} missing")
    result = _checked(bundle / "result.json", _BundleResult)
    kinfo = _checked(bundle / "kernel.json", _KernelInfo)
    if kinfo["arch"] not in arches():
        raise LabError(f"{bundle / 'kernel.json'}: arch: {kinfo['arch']!r} is no lab arch")
    scenario = bundle / f"{result['scenario']}.yaml"
    if not scenario.is_file():
        raise LabError(f"{bundle} is not a repro bundle: {scenario.name} missing")
    return result, kinfo, scenario
