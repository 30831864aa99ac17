"""QEMU command lines, built from a profile and a few run settings.  Pure: no I/O."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from lab.image_in_ram import Preload
from lab.profiles import Profile

# Always on the kernel command line.  panic=-1 with -no-reboot: a panic ends QEMU at once instead
# of hanging.  cryptomgr.notests: the crypto self-tests cost ~0.35 s of every boot under TCG
# (measured on both arches) and test nothing the lab is for.  nokaslr: the kernel sits at the
# same addresses on every boot (reports compare across runs, gdb needs no offset), as an x86
# PVH boot always did (its entry skips the decompressor that randomises); arm64 randomised
# itself from the seed QEMU puts in the device tree, 0.09-0.16 s of every TCG boot (interleaved
# A/B, 6 and 8 pairs).
BASE_CMDLINE = ("panic=-1", "quiet", "loglevel=4", "cryptomgr.notests=1", "nokaslr")


@dataclass(frozen=True)
class QemuSpec:
    profile: Profile
    image: Path
    initrd: Path
    accel: str  # "kvm" or "tcg"
    memory: str = "1G"
    smp: int = 2
    append: tuple[str, ...] = ()
    qemu_args: tuple[str, ...] = ()
    qmp_socket: Path | None = None
    ssh_port: int | None = None
    modules_share: Path | None = None
    name: str = "remaplab"
    gdb_port: int | None = None
    ram_file: Path | None = None  # guest RAM in a shared file the host can read
    shares: tuple[Path, ...] = ()  # host folders mounted read-write at the same guest path
    qmp_client: bool = False  # QEMU connects to a QMP server listening on qmp_socket
    incoming: str | None = (
        None  # -incoming URI ("defer"): start from a saved state (lab/snapshot.py)
    )
    # False: no -kernel/-initrd/-append.  A restored guest's RAM already holds them; loading
    # them again cost 70 ms of an arm64 restore (QEMU reads the 33 MB Image before it runs).
    load_kernel: bool = True
    bios: Path | None = None  # the profile's firmware as found (lab.profiles.firmware_path)
    # The kernel put into ram_file by the lab before QEMU starts; QEMU is given its header.
    preload: Preload | None = None


def portable(spec: QemuSpec) -> QemuSpec:
    """spec as QEMU alone boots it, by hand, after the lab is gone: the kernel loaded by QEMU (not
    preloaded into RAM), no QMP socket in the VM's folder, the guest's RAM anonymous (no file
    left in /dev/shm).  The argv a bundle keeps."""
    return replace(spec, preload=None, qmp_socket=None, qmp_client=False, ram_file=None)


def firmware_args(qemu_args: tuple[str, ...]) -> bool:
    """Whether the user's QEMU arguments boot firmware (-bios, a flash drive): QEMU then hands
    the -kernel file to the firmware whole (fw_cfg) instead of loading it into RAM."""
    return any(a in ("-bios", "-pflash") or "if=pflash" in a for a in qemu_args)


def share_params(shares: tuple[Path, ...]) -> list[str]:
    """Kernel parameters naming each share's 9p tag and guest path; the guest's /init
    (rootfs/init.c) mounts them (the kernel ignores unknown dotted parameters)."""
    return [f"remaplab.share{i}={path}" for i, path in enumerate(shares)]


def _words(append: tuple[str, ...]) -> list[str]:
    return [w for item in append for w in item.split()]  # a scenario item may hold several


# Lab defaults that a word of the user's takes out.  Neither word is a kernel parameter (the
# kernel would hand it to /init), so it is dropped with the default it undoes.
UNDO = {"kaslr": "nokaslr", "apictimer": "noapictimer"}


def randomised(append: tuple[str, ...]) -> bool:
    """Whether the user's kernel parameters ask for KASLR back: a `kaslr` among them takes the
    lab's `nokaslr` out (see UNDO)."""
    return "kaslr" in _words(append)


def cmdline(spec: QemuSpec) -> str:
    """The profile's parameters, the lab's (and the profile's TCG ones under TCG), the shares',
    the user's; a word in UNDO takes its default out."""
    words = _words(spec.append)
    undone = {UNDO[w] for w in words if w in UNDO}
    tcg = spec.profile.cmdline_tcg if spec.accel != "kvm" else ()  # as build_argv decides
    lab = [p for p in (*BASE_CMDLINE, *tcg) if p not in undone]
    user = [w for w in words if w not in UNDO]
    return " ".join([*spec.profile.cmdline, *lab, *share_params(spec.shares), *user])


def build_argv(spec: QemuSpec) -> list[str]:
    p = spec.profile
    cpu = p.cpu_kvm if spec.accel == "kvm" else p.cpu_tcg
    accel = spec.accel if spec.accel == "kvm" else "tcg,thread=multi"
    if spec.preload is not None and spec.ram_file is None:
        raise ValueError("a preloaded kernel needs the RAM file it is preloaded into")
    kernel = spec.image if spec.preload is None else spec.preload.header
    argv = [
        p.qemu,
        "-name",
        spec.name,
        *p.extra_args,
        "-machine",
        p.machine,
        "-accel",
        accel,
        "-cpu",
        cpu,
        "-m",
        spec.memory,
        "-smp",
        str(spec.smp),
        *(
            ["-kernel", str(kernel), "-initrd", str(spec.initrd), "-append", cmdline(spec)]
            if spec.load_kernel
            else []
        ),
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ]
    if spec.bios is not None:
        argv += ["-bios", str(spec.bios)]
    if spec.ram_file is not None:
        argv += [
            "-object",
            f"memory-backend-file,id=ram0,size={spec.memory},mem-path={spec.ram_file},share=on",
            "-machine",
            "memory-backend=ram0",
        ]
    if spec.qmp_socket is not None:
        server = "" if spec.qmp_client else ",server=on,wait=off"
        argv += ["-qmp", f"unix:{spec.qmp_socket}{server}"]
    if spec.ssh_port is not None:
        # restrict=on: the guest reaches nothing outside; the forward binds loopback only.
        argv += [
            "-netdev",
            f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22",
            "-device",
            f"{p.net_device},netdev=net0",
        ]
    if spec.modules_share is not None:
        argv += [
            "-fsdev",
            f"local,id=modules,path={spec.modules_share},security_model=none,readonly=on",
            "-device",
            f"{p.fs_device},fsdev=modules,mount_tag=modules",
        ]
    argv += share_args(p.fs_device, spec.shares)
    if spec.gdb_port is not None:
        argv += ["-gdb", f"tcp:127.0.0.1:{spec.gdb_port}"]
    argv += list(spec.qemu_args)
    if spec.incoming is not None:
        argv += ["-incoming", spec.incoming]
    return argv


def share_args(fs_device: str, shares: tuple[Path, ...]) -> list[str]:
    """One read-write virtio-9p device per share, tag shareN.  security_model=none: files the
    guest creates belong to the user running QEMU; multidevs=remap: unique inode numbers when the
    folder spans several filesystems."""
    argv: list[str] = []
    for i, path in enumerate(shares):
        escaped = str(path).replace(",", ",,")  # QEMU's option syntax doubles commas
        argv += [
            "-fsdev",
            f"local,id=share{i},path={escaped},security_model=none,multidevs=remap",
            "-device",
            f"{fs_device},fsdev=share{i},mount_tag=share{i}",
        ]
    return argv


def render(argv: list[str]) -> str:
    return shlex.join(argv)
