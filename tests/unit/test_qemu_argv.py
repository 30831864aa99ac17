from pathlib import Path

from lab.profiles import get_profile
from lab.qemu import QemuSpec, build_argv, cmdline


def spec(arch: str, **kw: object) -> QemuSpec:
    base: dict[str, object] = dict(
        profile=get_profile(arch),
        image=Path("/k/vmlinux"),
        initrd=Path("/k/initramfs.cpio"),
        accel="tcg",
        qmp_socket=Path("/run/qmp.sock"),
        ssh_port=40022,
        modules_share=Path("/k/modules/kernel"),
    )
    base.update(kw)
    return QemuSpec(**base)  # type: ignore[arg-type]


def opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_x86_argv() -> None:
    argv = build_argv(spec("x86_64"))
    assert argv[0] == "qemu-system-x86_64"
    assert opt(argv, "-machine") == ["q35"]
    assert opt(argv, "-accel") == ["tcg,thread=multi"]
    assert opt(argv, "-cpu") == ["max,-erms"]
    assert opt(argv, "-kernel") == ["/k/vmlinux"]
    assert opt(argv, "-initrd") == ["/k/initramfs.cpio"]
    assert "-no-reboot" in argv
    assert opt(argv, "-serial") == ["stdio"]
    assert opt(argv, "-qmp") == ["unix:/run/qmp.sock,server=on,wait=off"]


def test_forwarded_port_binds_loopback_only_and_net_is_restricted() -> None:
    for arch in ("x86_64", "arm64"):
        (netdev,) = opt(build_argv(spec(arch)), "-netdev")
        assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev
        assert "restrict=on" in netdev


def test_panic_ends_qemu() -> None:
    argv = build_argv(spec("arm64"))
    (append,) = opt(argv, "-append")
    assert "panic=-1" in append.split()
    assert "console=ttyAMA0" in append.split()
    assert "-no-reboot" in argv


def test_kvm_uses_host_cpu_and_user_append_comes_last() -> None:
    s = spec("x86_64", accel="kvm", append=("page_poison=1", "cma=64M"))
    argv = build_argv(s)
    assert opt(argv, "-accel") == ["kvm"]
    assert opt(argv, "-cpu") == ["host"]
    assert cmdline(s).endswith("page_poison=1 cma=64M")


def test_module_share_is_read_only_9p() -> None:
    argv = build_argv(spec("arm64"))
    (fsdev,) = opt(argv, "-fsdev")
    assert "path=/k/modules/kernel" in fsdev and "readonly=on" in fsdev
    assert "virtio-9p-pci,fsdev=modules,mount_tag=modules" in opt(argv, "-device")
    assert "-fsdev" not in build_argv(spec("arm64", modules_share=None))


def test_extra_args_memory_smp_gdb() -> None:
    argv = build_argv(
        spec("x86_64", memory="2G", smp=4, qemu_args=("-d", "guest_errors"), gdb_port=1234)
    )
    assert opt(argv, "-m") == ["2G"]
    assert opt(argv, "-smp") == ["4"]
    assert argv[-2:] == ["-d", "guest_errors"]
    assert opt(argv, "-gdb") == ["tcp:127.0.0.1:1234"]


def test_firmware_is_passed_only_when_found() -> None:
    assert "-bios" not in build_argv(spec("x86_64"))
    argv = build_argv(spec("x86_64", bios=Path("/usr/share/qemu/qboot.rom")))
    assert opt(argv, "-bios") == ["/usr/share/qemu/qboot.rom"]


def test_every_guest_boots_at_fixed_addresses() -> None:
    """nokaslr on both arches: reports compare across runs and gdb needs no offset."""
    for arch in ("x86_64", "arm64"):
        (append,) = opt(build_argv(spec(arch)), "-append")
        assert "nokaslr" in append.split()
    randomised = cmdline(spec("arm64", append=("kaslr", "cma=64M"))).split()
    assert "nokaslr" not in randomised and "kaslr" not in randomised
    assert randomised[-1] == "cma=64M"
    one_item = cmdline(spec("arm64", append=("cma=64M kaslr",))).split()  # a scenario's line
    assert "nokaslr" not in one_item and "kaslr" not in one_item and "cma=64M" in one_item


def test_x86_tcg_guests_skip_the_apic_timer_calibration() -> None:
    """noapictimer under TCG on x86_64 only: KVM guests have the TSC-deadline timer, arm64's
    timer needs no calibration; `apictimer` takes it out like `kaslr` takes out nokaslr."""
    assert "noapictimer" in cmdline(spec("x86_64")).split()
    assert "noapictimer" not in cmdline(spec("x86_64", accel="kvm")).split()
    assert "noapictimer" not in cmdline(spec("arm64")).split()
    back = cmdline(spec("x86_64", append=("cma=64M apictimer",))).split()
    assert "noapictimer" not in back and "apictimer" not in back
    assert "nokaslr" in back and back[-1] == "cma=64M"
    both = cmdline(spec("x86_64", append=("kaslr", "apictimer"))).split()
    assert not {"nokaslr", "noapictimer", "kaslr", "apictimer"} & set(both)
