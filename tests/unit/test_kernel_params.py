"""Kernel parameters the kernel's own config asks for."""

from __future__ import annotations

from pathlib import Path

from lab.bootcheck import kernel_params
from lab.kernel import Kernel


def _kernel(tmp_path: Path, config: str | None) -> Kernel:
    path = None
    if config is not None:
        path = tmp_path / "config"
        path.write_text(config)
    image = tmp_path / "vmlinux"
    return Kernel("x86_64", "6.1.0", image, None, None, path, "test", "k")


def test_a_kasan_kernel_reports_every_time(tmp_path: Path) -> None:
    """6.1's KASAN prints only its first report without kasan_multi_shot: one report at boot
    (a helper's foreign-driver run met one) left a reused guest blind to the driver's bug."""
    assert kernel_params(_kernel(tmp_path, "CONFIG_KASAN=y\nCONFIG_KASAN_GENERIC=y\n")) == (
        "kasan_multi_shot",
    )


def test_other_kernels_get_nothing(tmp_path: Path) -> None:
    assert kernel_params(_kernel(tmp_path, "# CONFIG_KASAN is not set\n")) == ()
    assert kernel_params(_kernel(tmp_path, None)) == ()  # a bring-your-own image without config


def test_a_user_who_asks_to_panic_at_a_report_keeps_it(tmp_path: Path) -> None:
    """KASAN's end_report() honours panic_on_warn only without multi-shot: the user's own
    parameter wins."""
    kasan = _kernel(tmp_path, "CONFIG_KASAN=y\n")
    for own in ("panic_on_warn=1", "kasan.fault=panic"):
        assert kernel_params(kasan, ("nokaslr", own)) == ()
    assert kernel_params(kasan, ("nokaslr",)) == ("kasan_multi_shot",)
