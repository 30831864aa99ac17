import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from lab.cache import Entry, hash_strings, hash_tree, verify_manifest


def _build_counting(tmp: Path, counter: Path) -> list[str]:
    with counter.open("a") as fh:
        fh.write("x")
    (tmp / "data.bin").write_bytes(b"payload" * 1000)
    (tmp / "sub").mkdir()
    (tmp / "sub/other").write_text("hello")
    return ["data.bin"]


def test_builds_once_and_reuses(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    entry = Entry("things", "k1", base=tmp_path / "c")
    path = entry.ensure(lambda t: _build_counting(t, counter))
    assert (path / "data.bin").exists()
    assert entry.ensure(lambda t: _build_counting(t, counter)) == path
    assert counter.read_text() == "x"


def test_corrupt_entry_is_detected_and_rebuilt(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    entry = Entry("things", "k1", base=tmp_path / "c")
    path = entry.ensure(lambda t: _build_counting(t, counter))
    (path / "data.bin").write_bytes(b"payload" * 999 + b"PAYLOAD")  # same size, other bytes
    assert verify_manifest(path) == "data.bin: checksum mismatch"
    logs: list[str] = []
    entry.ensure(lambda t: _build_counting(t, counter), logs.append)
    assert counter.read_text() == "xx"
    assert "corrupt" in logs[0]
    (path / "sub/other").unlink()
    assert verify_manifest(path) == "missing file sub/other"
    (path / "sub/other").write_text("hello, longer")
    assert verify_manifest(path) == "sub/other: size 13, expected 5"


def test_half_written_entry_is_never_used(tmp_path: Path) -> None:
    entry = Entry("things", "k1", base=tmp_path / "c")

    def broken(tmp: Path) -> list[str]:
        (tmp / "partial").write_text("half")
        raise RuntimeError("build died")

    with pytest.raises(RuntimeError, match="build died"):  # the build's own error, unchanged
        entry.ensure(broken)
    assert not entry.path.exists()
    assert [p.name for p in entry.parent.iterdir() if not p.name.endswith(".lock")] == []
    # A directory without a manifest (e.g. from a crashed older version) is rebuilt too.
    entry.path.mkdir()
    counter = tmp_path / "count"
    entry.ensure(lambda t: _build_counting(t, counter))
    assert counter.read_text() == "x"


def _worker(base: str, counter: str, start: Barrier) -> None:
    import time

    def build(tmp: Path) -> list[str]:
        # The window in which an unlocked second build would start and count: the workers
        # asked together (the barrier), so without the lock all three would be in here.
        time.sleep(0.3)
        return _build_counting(tmp, Path(counter))

    start.wait(60)  # all three ask at once, however loaded the machine
    Entry("things", "shared", base=Path(base)).ensure(build)


def test_concurrent_runs_build_once(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    start = multiprocessing.Barrier(3)
    procs = [
        multiprocessing.Process(target=_worker, args=(str(tmp_path / "c"), str(counter), start))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert counter.read_text() == "x"


def test_keys_are_stable_and_sensitive(tmp_path: Path) -> None:
    assert hash_strings(["a", "b"]) == hash_strings(["a", "b"])
    assert hash_strings(["ab"]) != hash_strings(["a", "b"])
    (tmp_path / "t").mkdir()
    (tmp_path / "t/f").write_text("1")
    h1 = hash_tree(tmp_path / "t")
    (tmp_path / "t/f").chmod(0o755)
    assert hash_tree(tmp_path / "t") != h1


def _aged(path: Path, days: float) -> None:
    import os
    import time

    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_retention_keeps_the_newest_and_anything_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new entry prunes its kind down to KEEP, least recently used first; an entry used within
    IN_USE_S or locked (being built or checked) stays whatever its age."""
    from filelock import FileLock

    from lab import cache

    monkeypatch.setitem(cache.KEEP, "things", 2)
    base = tmp_path / "c"
    for i in range(6):
        Entry("things", f"k{i}", base=base).ensure(lambda t: [])
    parent = base / "things"
    for i, days in enumerate([9, 8, 7, 6, 0.1, 5]):  # k4 was used 2.4 hours ago
        _aged(parent / f"k{i}", days)
    Entry("things", "k3", base=base).ensure(lambda t: [])  # a hit: k3 is used now
    with FileLock(str(parent / ".k1.lock")):  # another run is checking k1
        Entry("things", "new", base=base).ensure(lambda t: [])
    left = sorted(p.name for p in parent.iterdir() if not p.name.startswith("."))
    # newest two: new and k3; k4 in use; k1 locked; k0, k2 and k5 gone
    assert left == ["k1", "k3", "k4", "new"]


def test_half_built_entries_of_killed_builds_go_once_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab import cache

    monkeypatch.setitem(cache.KEEP, "things", 2)
    parent = tmp_path / "c" / "things"
    parent.mkdir(parents=True)
    old, young = parent / ".k9.tmp-123", parent / ".k8.tmp-456"
    old.mkdir()
    young.mkdir()
    _aged(old, 2)
    Entry("things", "new", base=tmp_path / "c").ensure(lambda t: [])
    assert not old.exists() and young.exists()


def test_kinds_without_a_limit_are_kept(tmp_path: Path) -> None:
    base = tmp_path / "c"
    for i in range(4):
        Entry("kernel-src", f"k{i}", base=base).ensure(lambda t: [])
        _aged(base / "kernel-src" / f"k{i}", 30)
    Entry("kernel-src", "new", base=base).ensure(lambda t: [])
    assert len([p for p in (base / "kernel-src").iterdir() if not p.name.startswith(".")]) == 5
