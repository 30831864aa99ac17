"""The subcommands of ``remaplab``, one module per family; each registers its parsers."""

from __future__ import annotations

import argparse

from lab.kernel.spec import KernelSpec


def kernel_spec(args: argparse.Namespace) -> KernelSpec:
    return KernelSpec.from_options(vars(args).get)


def chosen_arches(args: argparse.Namespace) -> list[str]:
    """--arch (repeatable), default every arch with a QEMU profile; each one checked."""
    from lab.profiles import arches, get_profile

    chosen: list[str] = args.arch or list(arches())
    for arch in chosen:
        get_profile(arch)
    return chosen
