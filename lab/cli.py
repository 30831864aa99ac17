"""The ``remaplab`` command line.

Exit statuses: a guest command's own status passes through; 121 when the guest's kernel crashed
under a command or a shell (the guest died, or a kernel report was on the console before the
command's status came back, complete then or soon after); 128 + N after signal N; 124 when a
guest command timed out; 125 when remaplab itself failed (bad input, boot failure, host
problem); 2 for usage errors.  121 is used by no shell convention (126 and 127 are the shell's,
128+N a signal's) and, like 124, `git bisect run` counts it as bad.

`remaplab reproduce` exits 0 when the reproducer crashed the kernel at least once (with a crash
matching --title), 1 when it did not, 125 on a lab error; `remaplab bisect` 0 when it named the
culprit, 1 when only skipped commits were left, 125 on a lab error."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from lab import reaper
from lab.errors import GuestTimeout, LabError

EXIT_KERNEL_CRASH = 121
EXIT_TIMEOUT = 124
EXIT_LAB = 125
DISTRIBUTION = "remaplab"  # [project] name in pyproject.toml


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"remaplab: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def version() -> str:
    """The installed distribution's version ('unknown' in a checkout that was never installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> Parser:
    from lab.commands import report, reproduce, scenarios, tools, vm

    parser = Parser(
        prog="remaplab",
        description="A QEMU lab for Linux kernel memory-mapping code: boot guests, run "
        "scenarios, triage kernel crashes, reproduce and bisect.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("--version", action="version", version=f"remaplab {version()}")
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    vm.register(sub)
    scenarios.register(sub)
    tools.register(sub, Parser)
    reproduce.register(sub)
    report.register(sub)  # report merge|durations, soak
    return parser


# Options whose values are other programs' flags ("--qemu-arg -device", "--cflags -DX=1"):
# argparse takes a value starting with '-' for an option of its own unless it is joined.
FLAG_VALUED = ("--cflags", "--append", "--qemu-arg", "--compare-append", "--compare-qemu-arg")


def _joined(words: list[str]) -> list[str]:
    """words with each FLAG_VALUED option and its value as one OPTION=VALUE word."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in FLAG_VALUED and i + 1 < len(words):
            out.append(f"{words[i]}={words[i + 1]}")
            i += 2
        else:
            out.append(words[i])
            i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, command = args_list[:cut], args_list[cut + 1 :]
    args = build_parser().parse_args(_joined(args_list))
    func: Callable[[argparse.Namespace, list[str]], int] = args.func
    reaper.remember_sigint()
    try:
        status = func(args, command)
        # A signal that was swallowed where it landed (lab/reaper.py) still decides the status.
        signum = reaper.signalled()
        return status if signum is None else 128 + signum
    except GuestTimeout as exc:
        print(f"remaplab: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except LabError as exc:
        print(f"remaplab: {exc}", file=sys.stderr)
        return EXIT_LAB
    except PermissionError as exc:  # e.g. a cache folder left behind by a run as root
        print(f"remaplab: {exc} (not writable or readable by this user)", file=sys.stderr)
        return EXIT_LAB
    except BrokenPipeError:  # stdout closed early (`remaplab run --list | head`)
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("remaplab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
