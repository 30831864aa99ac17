"""remaplab reproduce in real guests: a reproducer that panics (sysrq c) on both arches over
several VMs, one that never crashes (the clean guest is reused), one that never ends (timeout),
--title filtering, the JSON and the bundle, exit statuses; and a user's config whose options do
not all survive olddefconfig, reported as such (configure step on Debian's linux-source)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import ARCHES

REMAPLAB = [sys.executable, "-m", "lab.cli"]
REPRO = Path(__file__).resolve().parents[1] / "data/repro"
PANIC = "kernel panic: sysrq triggered crash"


def _reproduce(tmp: Path, repro: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*REMAPLAB, "reproduce", "--repro", str(REPRO / repro), "--out", str(tmp / "b")]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=1800, check=False)


@pytest.mark.parametrize("arch", ARCHES)
def test_panic_reproduces_on_every_run_over_two_vms(tmp_path: Path, arch: str) -> None:
    res = _reproduce(
        tmp_path, "sysrq-crash.c", "--arch", arch, "--runs", "3", "--vms", "2", "--json"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert (data["runs"], data["crashed"], data["titles"]) == (3, 3, {PANIC: 3})
    assert {d["vm"] for d in data["details"]} == {1, 2}  # both VMs ran
    assert all(d["guest"] == "fresh" for d in data["details"])  # after a crash: a fresh VM
    bundle = Path(data["bundle"])
    for name in ("repro.c", "repro", "kernel.json", "repro.sh", "runs.json"):
        assert (bundle / name).is_file(), name
    for n in (1, 2, 3):
        assert "sysrq triggered crash" in (bundle / f"run-{n}-console.log").read_text()
        assert "sysrq" in (bundle / f"run-{n}-reports.txt").read_text()
    assert json.loads((bundle / "kernel.json").read_text())["spec"]["lab_kernel"] is None
    script = (bundle / "repro.sh").read_text()
    assert f"--arch {arch} --runs 3 --vms 2" in script


def test_a_bundle_of_a_reproducer_in_several_files_reruns_anywhere(tmp_path: Path) -> None:
    """A reproducer that includes files of its own (beside it and above it) is bundled with
    them; the bundle, moved away from sources that are then gone, reruns from a third folder
    and writes its results there."""
    src = tmp_path / "src" / "repro"
    (src / "sub").mkdir(parents=True)
    (tmp_path / "src" / "common").mkdir()
    (tmp_path / "src" / "common" / "trigger.h").write_text('#define TRIGGER "c"\n')
    (src / "sub" / "crash.h").write_text(
        '#include "../../common/trigger.h"\n'
        "static int crash(int fd) { return write(fd, TRIGGER, 1) != 1; }\n"
    )
    (src / "main.c").write_text(
        '#include <fcntl.h>\n#include <unistd.h>\n#include "sub/crash.h"\n'
        'int main(void) { return crash(open("/proc/sysrq-trigger", O_WRONLY)); }\n'
    )
    argv = [*REMAPLAB, "reproduce", "--repro", str(src / "main.c"), "--out", str(tmp_path / "b")]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    moved = tmp_path / "elsewhere" / "bundle"
    moved.parent.mkdir()
    (tmp_path / "b").rename(moved)
    shutil.rmtree(tmp_path / "src")
    assert (moved / "_" / "repro.c").is_file() and (moved / "common" / "trigger.h").is_file()
    third = tmp_path / "third"
    third.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "REMAPLAB"}
    res = subprocess.run(
        [str(moved / "repro.sh"), "--runs", "1"],
        cwd=third,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert res.stdout.splitlines()[0] == f"reproduced 1/1: {PANIC}"
    assert list((third / "results").glob("repro-*")), "the rerun's results are not where it ran"


def test_no_crash_reuses_the_clean_guest_and_exits_1(tmp_path: Path) -> None:
    res = _reproduce(tmp_path, "no-crash.c", "--runs", "2", "--vms", "1", "--json")
    assert res.returncode == 1, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert (data["runs"], data["crashed"], data["titles"]) == (2, 0, {})
    assert [d["guest"] for d in data["details"]] == ["fresh", "reused"]
    assert [d["outcome"] for d in data["details"]] == ["no crash", "no crash"]
    assert [d["status"] for d in data["details"]] == [0, 0]
    said = (tmp_path / "b" / "run-2-output.txt").read_text()  # the reproducer's own output
    assert "--- stdout ---\nLinux " in said and ", pid " in said


def test_a_reproducers_arguments_and_cflags_reach_it_and_its_bundle(tmp_path: Path) -> None:
    """--cflags FLAGS compile it, the words after -- are its argv, quoting kept; repro.sh
    reruns it the same way (extra options still go before the --)."""
    flags = "-DGREETING='\"hi there\"'"  # one shell-quoted string: the macro is a C string
    res = _reproduce(tmp_path, "print-args.c", "--cflags", flags, "--", "a", "b c", "-x")
    assert res.returncode == 1, res.stderr[-3000:]  # no crash
    said = (tmp_path / "b" / "run-1-output.txt").read_text()
    assert "greeting: hi there\narg 1: [a]\narg 2: [b c]\narg 3: [-x]\n" in said, said
    script = (tmp_path / "b" / "repro.sh").read_text()
    assert f"--cflags {shlex.quote(flags)}" in script, script
    assert script.rstrip().endswith("\"$@\" -- a 'b c' -x"), script
    rerun = subprocess.run(
        [str(tmp_path / "b" / "repro.sh"), "--out", str(tmp_path / "again")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert rerun.returncode == 1, rerun.stderr[-3000:]
    again = (tmp_path / "again" / "run-1-output.txt").read_text()
    assert "greeting: hi there\narg 1: [a]\narg 2: [b c]\narg 3: [-x]\n" in again


def test_title_filter_counts_only_matching_crashes(tmp_path: Path) -> None:
    res = _reproduce(tmp_path, "sysrq-crash.c", "--title", "^WARNING", "--json")
    assert res.returncode == 1, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert data["crashed"] == 0 and data["titles"] == {PANIC: 1}
    res = _reproduce(tmp_path, "sysrq-crash.c", "--title", "sysrq")
    assert res.returncode == 0
    assert res.stdout.splitlines()[0] == f"reproduced 1/1: {PANIC}"


def test_a_run_that_never_ends_is_no_crash_timed_out(tmp_path: Path) -> None:
    res = _reproduce(tmp_path, "hang.c", "--timeout", "5", "--json")
    assert res.returncode == 1, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert data["details"][0]["outcome"] == "no crash (timed out)"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--title", "("], "not a regular expression"),
        (["--runs", "0"], "--runs must be from 1 to 10000, not 0"),
        (["--lab-kernel", "kasan", "--config", "/etc/hostname"], "exclude each other"),
        (["--cflags", "-DX='unclosed"], '--cflags "-DX=\'unclosed": No closing quotation'),
    ],
)
def test_user_errors_are_one_line_and_125(tmp_path: Path, args: list[str], said: str) -> None:
    res = _reproduce(tmp_path, "no-crash.c", *args)
    assert res.returncode == 125
    assert said in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_compile_error_is_125(tmp_path: Path) -> None:
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return nosuch; }\n")
    argv = [*REMAPLAB, "reproduce", "--repro", str(bad)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 125 and "nosuch" in res.stderr and "Traceback" not in res.stderr


def test_user_config_options_that_do_not_survive_are_named(tmp_path: Path) -> None:
    """The configure step of a --config build on Debian's linux-source: KASAN_INLINE without
    KASAN cannot survive olddefconfig, VIRTIO_NET off is overridden (the lab needs it)."""
    from lab.kernel.labbuild import configure, debian_source
    from lab.kernel.userconfig import report_dropped, user_fragments
    from lab.profiles import get_profile

    user = tmp_path / "user.config"
    user.write_text(
        "CONFIG_DEBUG_KERNEL=y\n# CONFIG_KASAN is not set\nCONFIG_KASAN_INLINE=y\n"
        "# CONFIG_VIRTIO_NET is not set\nCONFIG_PRINTK=y\n"
    )
    profile = get_profile("x86_64")
    out = tmp_path / "build"
    out.mkdir()
    files = user_fragments(profile)
    dropped = configure(profile, debian_source(), out, files, tmp_path / "log", user)
    said: list[str] = []
    report_dropped(dropped, user, said.append)
    text = "\n".join(said)
    assert "2 option(s)" in said[0], text
    assert "CONFIG_KASAN_INLINE=y -> absent" in text
    assert "CONFIG_VIRTIO_NET=not set -> y: the lab needs it to boot" in text
    assert "CONFIG_PRINTK" not in text and "CONFIG_DEBUG_KERNEL" not in text


WARNMOD = """// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include <linux/proc_fs.h>

static ssize_t warnmod_write(struct file *f, const char __user *buf, size_t n, loff_t *pos)
{
	WARN(1, "warnmod: the user's bug\\n");
	return n;
}

static const struct proc_ops warnmod_ops = { .proc_write = warnmod_write };

static int __init warnmod_init(void)
{
	return proc_create("warnmod", 0200, NULL, &warnmod_ops) ? 0 : -ENOMEM;
}

static void __exit warnmod_exit(void)
{
	remove_proc_entry("warnmod", NULL);
}

module_init(warnmod_init);
module_exit(warnmod_exit);
MODULE_LICENSE("GPL");
"""
WARN_REPRO = r"""#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/proc/warnmod", O_WRONLY);

	if (fd < 0 || write(fd, "1", 1) != 1) {
		perror("/proc/warnmod");
		return 1;
	}
	return 0;
}
"""


def test_a_users_module_is_built_and_loaded_for_the_reproducer(tmp_path: Path) -> None:
    """--module: the driver's source folder is built for the kernel and loaded into every fresh
    guest before its reproducer runs; the bundle carries the sources and its repro.sh loads them
    again from wherever the bundle is."""
    mod = tmp_path / "warnmod"
    mod.mkdir()
    (mod / "Kbuild").write_text("obj-m += warnmod.o\n")
    (mod / "warnmod.c").write_text(WARNMOD)
    repro = tmp_path / "warn.c"
    repro.write_text(WARN_REPRO)
    argv = [*REMAPLAB, "reproduce", "--repro", str(repro), "--module", str(mod)]
    argv += ["--runs", "2", "--out", str(tmp_path / "b"), "--json"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(res.stdout)
    assert data["crashed"] == 2 and data["title"] == "WARNING in warnmod_write", data["titles"]
    bundle = Path(data["bundle"])
    assert (bundle / "modules/1-warnmod/warnmod.c").is_file()
    assert not list((bundle / "modules/1-warnmod").glob("*.ko"))  # sources, rebuilt on rerun
    assert '--module "$here"/modules/1-warnmod' in (bundle / "repro.sh").read_text()
    assert "warnmod.c:" in (bundle / "run-1-reports.txt").read_text()  # decoded to its lines
    moved = tmp_path / "moved"
    shutil.move(bundle, moved)
    rerun = subprocess.run(
        [str(moved / "repro.sh"), "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=tmp_path,
    )
    assert rerun.returncode == 0 and "reproduced 1/1: WARNING in warnmod_write" in rerun.stdout, (
        rerun.stdout + rerun.stderr[-2000:]
    )


def test_a_module_folder_that_is_none_is_refused(tmp_path: Path) -> None:
    res = _reproduce(tmp_path, "no-crash.c", "--module", str(tmp_path))
    assert res.returncode == 125
    assert f"--module {tmp_path}: not a module folder (no Kbuild or Makefile)" in res.stderr
    gone = _reproduce(tmp_path, "no-crash.c", "--module", str(tmp_path / "nope"))
    assert gone.returncode == 125
    assert f"--module {tmp_path / 'nope'}: no such folder" in gone.stderr


@pytest.mark.parametrize(
    ("init", "said"),
    [
        ("return -EINVAL;", "insmod badmod.ko failed: "),
        (
            'WARN(1, "badmod: init\\n");\n\treturn 0;',
            "loading badmod.ko made the kernel report [WARNING]",
        ),
    ],
    ids=["refused", "reports"],
)
def test_a_module_that_will_not_load_stops_at_once(tmp_path: Path, init: str, said: str) -> None:
    """A module whose init fails (or makes the kernel report) fails the same on every guest:
    one boot, one line, exit 125, instead of a boot per run."""
    mod = tmp_path / "badmod"
    mod.mkdir()
    (mod / "Kbuild").write_text("obj-m += badmod.o\n")
    (mod / "badmod.c").write_text(
        "// SPDX-License-Identifier: GPL-2.0\n#include <linux/module.h>\n"
        f"static int __init badmod_init(void)\n{{\n\t{init}\n}}\n"
        'module_init(badmod_init);\nMODULE_LICENSE("GPL");\n'
    )
    res = _reproduce(tmp_path, "no-crash.c", "--module", str(mod), "--runs", "6")
    assert res.returncode == 125, res.stderr[-3000:]
    assert said in res.stderr, res.stderr[-3000:]
    assert res.stderr.count("run ") <= 2, res.stderr[-3000:]  # not a boot per run
