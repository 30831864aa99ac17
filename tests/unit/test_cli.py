"""Bad input gives one clear line and exit 125 (or argparse's 2), never a traceback, never a VM."""

from pathlib import Path

import pytest

from lab.cli import EXIT_LAB, main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_unknown_arch(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["boot", "--arch", "sparc", "--", "true"], capsys)
    assert code == EXIT_LAB
    assert err.strip() == "remaplab: unknown arch 'sparc': choose one of arm64, x86_64"


def test_missing_kernel_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(
        ["boot", "--arch", "x86_64", "--kernel", str(tmp_path / "nope"), "--", "true"], capsys
    )
    assert code == EXIT_LAB
    assert f"kernel image {tmp_path / 'nope'} does not exist" in err
    assert len(err.strip().splitlines()) == 1


def test_unreadable_kernel_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(["boot", "--arch", "arm64", "--kernel", str(tmp_path), "--", "true"], capsys)
    assert code == EXIT_LAB and "is a directory" in err


def test_kdir_without_kernel(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(["boot", "--arch", "arm64", "--kdir", str(tmp_path), "--", "true"], capsys)
    assert code == EXIT_LAB and "--kdir needs --kernel" in err


def test_bad_accel(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["boot", "--arch", "x86_64", "--accel", "hvf", "--", "true"], capsys)
    assert code == EXIT_LAB and "--accel 'hvf'" in err


def test_missing_qemu(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    code, err = run(["boot", "--arch", "arm64", "--", "true"], capsys)
    assert code == EXIT_LAB
    assert "qemu-system-aarch64 not found" in err and "make deps" in err


def test_usage_error_is_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["boot"], capsys)
    assert code == 2 and "--arch" in err
    code, err = run(["boot", "--arch", "x86_64", "--smp", "many"], capsys)
    assert code == 2 and "--smp" in err


def test_run_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["run", "no-such-scenario"], capsys)
    assert code == EXIT_LAB and "unknown scenario 'no-such-scenario'" in err


def test_run_bad_yaml_names_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "broken.yaml").write_text(
        "name: broken\ndescription: d\nsteps:\n  - map: {backing: paper}\n"
    )
    code, err = run(["run", "--scenarios", str(tmp_path)], capsys)
    assert code == EXIT_LAB
    assert f"{tmp_path / 'broken.yaml'}:4: steps[0].map.backing:" in err


CRASHLOGS = Path(__file__).resolve().parents[1] / "data" / "crashlogs"


def test_triage_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["triage", "--json", str(CRASHLOGS / "111.log")]) == 0
    (report, *_) = json.loads(capsys.readouterr().out)
    assert report["title"] == "KASAN: slab-out-of-bounds Read in sg_remove_request"
    assert report["kind"] == "KASAN" and "sg_remove_request" in report["text"]


def test_triage_no_crash_is_empty_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import json

    log = tmp_path / "clean.log"
    log.write_text("[    0.0] Linux version 6.1\n[    1.0] remaplab: ready\n")
    assert main(["triage", "--json", str(log)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_triage_bad_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(["triage", str(tmp_path / "missing.log")], capsys)
    assert code == EXIT_LAB and "no such file" in err
    binary = tmp_path / "core"
    binary.write_bytes(b"\x7fELF\x00\x00\x01")
    code, err = run(["triage", str(binary)], capsys)
    assert code == EXIT_LAB and "binary data" in err
    # --module / --vmlinux must name ELF objects, not the log (a swapped argument).
    log = tmp_path / "console.log"
    log.write_text("[    1.0] hello\n")
    code, err = run(["triage", "--module", str(log), str(log)], capsys)
    assert (
        code == EXIT_LAB
        and err.strip() == f"remaplab: {log}: not an ELF object (want a .ko or vmlinux)"
    )
    code, err = run(["triage", "--vmlinux", str(tmp_path), str(log)], capsys)
    assert code == EXIT_LAB and "no such object file" in err
    # A device never ends and a folder is no log: refused at once, not read.
    code, err = run(["triage", "/dev/zero"], capsys)
    assert code == EXIT_LAB and "/dev/zero: cannot read: not a regular file" in err
    code, err = run(["triage", str(tmp_path)], capsys)
    assert code == EXIT_LAB and f"{tmp_path}: cannot read: a folder" in err


def test_triage_reads_a_pipe(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`remaplab triage <(zcat console.log.gz)`: a FIFO is read to its end."""
    import os
    import threading

    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    text = (CRASHLOGS / "111.log").read_bytes()

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    code, _ = run(["triage", "--json", str(fifo)], capsys)
    writer.join(timeout=10)
    assert code == 0


def test_triage_reads_consoles_with_nul_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Serial consoles hold NUL bytes (line noise, a reset): the log is read, not refused."""
    log = tmp_path / "console.log"
    log.write_bytes(
        b"[    1.0] ok\x00\x00\n[    2.0] \xff\xfe garbage\n"
        b"[   10.1] BUG: unable to handle page fault for address: ffff888000000000\n"
        b"[   10.1] #PF: supervisor read access in kernel mode\n"
        b"[   10.1] RIP: 0010:multimap_ioctl+0x12/0x40 [multimap]\n"
        b"[   10.1] Call Trace:\n[   10.1]  <TASK>\n"
        b"[   10.1]  __x64_sys_ioctl+0x8c/0xc0\n[   10.1]  </TASK>\n"
    )
    assert main(["triage", str(log)]) == 0
    out = capsys.readouterr().out
    assert (
        "console.log:3: [BUG] BUG: unable to handle kernel paging request in multimap_ioctl" in out
    )


def test_run_takes_scenario_files_as_well_as_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A file argument is that file (each once, however it is spelled); a name is one of the
    folder's; two different files of one name are refused; NAME.yaml alone says how to name."""
    from lab.paths import REPO

    shipped = REPO / "scenarios" / "bad-requests.yaml"
    again = REPO / "scenarios" / ".." / "scenarios" / "bad-requests.yaml"
    assert main(["run", "--list", "bad-requests", str(shipped), str(again)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in listed] == ["bad-requests"]
    copy = tmp_path / "bad-requests.yaml"
    copy.write_text(shipped.read_text())
    code, err = run(["run", "--list", str(copy), "bad-requests"], capsys)
    assert code == EXIT_LAB and "two scenarios named 'bad-requests'" in err
    code, err = run(["run", "--list", "bad-requests.yaml"], capsys)
    assert code == EXIT_LAB and "is named without .yaml" in err


def test_options_whose_values_are_other_programs_flags_take_them() -> None:
    """argparse reads `--qemu-arg -device` as two options; QEMU's, the compiler's and the
    kernel's flags are values of --qemu-arg, --cflags and --append."""
    from lab.cli import _joined, build_parser

    words = ["boot", "--arch", "x86_64", "--qemu-arg", "-device", "--qemu-arg", "virtio-rng-pci"]
    args = build_parser().parse_args(_joined([*words, "--append", "-x"]))
    assert args.qemu_arg == ["-device", "virtio-rng-pci"] and args.append == ["-x"]
    repro = ["reproduce", "--repro", "r.c", "--cflags", "-DX=1", "--runs", "2"]
    args = build_parser().parse_args(_joined(repro))
    assert args.cflags == "-DX=1" and args.runs == 2
    assert _joined(["--cflags"]) == ["--cflags"]  # no value: argparse says so


def test_every_append_is_kept_in_order() -> None:
    """`--append a --append b` gives the guest both (the second did replace the first)."""
    from lab.cli import _joined, build_parser
    from lab.commands.vm import _vm_options
    from lab.vm import VMOptions

    words = ["boot", "--arch", "arm64", "--append", "initcall_debug", "--append", "a=1 b"]
    options = _vm_options(build_parser().parse_args(_joined(words)))
    assert isinstance(options, VMOptions)
    assert options.append == ("initcall_debug", "a=1", "b")


def test_gdb_with_a_randomised_kernel_is_refused_before_any_vm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run(
        ["boot", "--arch", "x86_64", "--gdb", "--append", "kaslr", "--", "true"], capsys
    )
    assert code == EXIT_LAB and "drop kaslr from --append" in err
