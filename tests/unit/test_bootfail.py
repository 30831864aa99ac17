"""The message of a boot that failed: what the console or QEMU said, and both files named."""

from __future__ import annotations

from pathlib import Path

from lab.bootfail import evidence, explain_exit


def test_a_panic_at_boot_is_named_from_the_console(tmp_path: Path) -> None:
    text = "[ 1.2] Kernel panic - not syncing: VFS: Unable to mount root fs\n"
    why = explain_exit("x86_64", text, "", "status 0", tmp_path / "c", tmp_path / "e")
    assert why == (
        "x86_64 kernel panicked during boot: Kernel panic - not syncing: VFS: Unable to mount "
        f"root fs ({evidence(tmp_path / 'c', tmp_path / 'e')})"
    )


def test_an_init_failure_is_named_from_the_console(tmp_path: Path) -> None:
    text = "remaplab: init failed: no eth0 (virtio_net missing?)\r\n"
    why = explain_exit("arm64", text, "", "status 0", tmp_path / "c", tmp_path / "e")
    assert why == (
        "arm64 guest init failed: no eth0 (virtio_net missing?) "
        f"({evidence(tmp_path / 'c', tmp_path / 'e')})"
    )


def test_qemu_s_own_end_and_last_words_with_both_files(tmp_path: Path) -> None:
    console, stderr = tmp_path / "console.log", tmp_path / "qemu-stderr.log"
    stderr.write_text("warning: x\nqemu: kvm.c:3183: kvm_buf_set_msrs: Assertion failed.\n\n")
    why = explain_exit("x86_64", "", "(no console output)", "killed by SIGABRT", console, stderr)
    assert why.startswith("QEMU exited (killed by SIGABRT) before the x86_64 guest was ready")
    assert "QEMU said: 'qemu: kvm.c:3183: kvm_buf_set_msrs: Assertion failed.'" in why
    assert why.endswith(f"({evidence(console, stderr)})")
    assert f"console log: {console}; QEMU stderr: {stderr}" == evidence(console, stderr)


def test_no_stderr_file_is_no_error(tmp_path: Path) -> None:
    why = explain_exit("arm64", "", "x", "status 1", tmp_path / "c", tmp_path / "missing")
    assert "QEMU said" not in why and "status 1" in why
