"""`remaplab --version`: the installed distribution's version on stdout, exit 0."""

from __future__ import annotations

from importlib import metadata

import pytest

from lab.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    captured = capsys.readouterr()
    assert captured.out == f"remaplab {metadata.version('remaplab')}\n"
    assert captured.err == ""


def test_version_needs_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:  # before the required subcommand is checked
        main(["--version", "run"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("remaplab ")
