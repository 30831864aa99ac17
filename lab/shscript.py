"""The start of every repro.sh a bundle carries: the bundle's own folder (wherever it was moved;
CDPATH cannot redirect or echo the cd) and the remaplab to run (REMAPLAB when set, as given,
else the one that wrote the bundle, else the one on PATH)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def prelude() -> str:
    own = shlex.quote(str(Path(sys.executable).parent / "remaplab"))
    return (
        'here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 125\n'
        'if [ -n "${REMAPLAB-}" ]; then\n'
        "\tremaplab=$REMAPLAB\n"
        "else\n"
        f"\tremaplab={own}\n"
        '\t[ -x "$remaplab" ] || remaplab=remaplab\n'
        "fi\n"
    )


def in_bundle(rel: str) -> str:
    """A shell word for a file of the bundle, wherever the bundle is when its script runs."""
    return f'"$here"/{shlex.quote(rel)}'
