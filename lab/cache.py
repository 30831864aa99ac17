"""Content-keyed cache entries shared by concurrent runs.

An entry is a directory ``<cache>/<kind>/<key>``.  It is built in a temporary sibling under a
file lock and published by an atomic rename, so a half-written entry is never visible.  Each
entry carries ``manifest.json`` (size of every file, sha256 of the files that matter); an entry
that fails verification is treated as corrupt, removed and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from lab.errors import LabError
from lab.paths import cache_dir
from lab.steplog import step

MANIFEST = "manifest.json"
LOCK_TIMEOUT_S = 1800.0
# Retention: how many entries of a kind stay once one more is built (the least recently used go
# first; an entry's mtime is when it was last used).  Content keys make every module, tools or
# initramfs change a new entry: 150 initramfs (1.6 GB) piled up here in a day without a bound.
# Kinds not named are kept (one per Debian package version, or bounded on their own: snapshot).
KEEP: dict[str, int] = {
    "initramfs": 24,
    "kernels": 24,
    "modules": 64,
    "byo-modules": 64,
    "tools": 16,
    "programs": 64,
    "userland": 8,
    "kernel-build": 8,  # lab and kasan x 2 arches, and room for --config builds
}
IN_USE_S = 24 * 3600.0  # an entry used this recently is never removed (a run may still use it)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def hash_strings(parts: Iterable[str | bytes]) -> str:
    """A short stable key for a sequence of strings or byte blobs."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:16]


def hash_tree(root: Path) -> str:
    """Hash of every file's relative path, mode and contents below root (sources -> cache key)."""
    parts: list[str | bytes] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parts += [str(path.relative_to(root)), oct(path.stat().st_mode & 0o777), path.read_bytes()]
    return hash_strings(parts)


def write_manifest(root: Path, hashed: Iterable[str]) -> None:
    sizes: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            sizes[str(path.relative_to(root))] = path.stat().st_size
    sums = {rel: sha256_file(root / rel) for rel in hashed}
    (root / MANIFEST).write_text(json.dumps({"sizes": sizes, "sha256": sums}, sort_keys=True))


def verify_manifest(root: Path) -> str | None:
    """None when the entry is intact, else what is wrong with it."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable manifest: {exc}"
    base = f"{root}{os.sep}"  # plain strings: a kernel entry has 20,000 files (Path: 4x slower)
    for rel, size in manifest["sizes"].items():
        if rel == MANIFEST:
            continue
        try:
            actual = os.stat(base + rel).st_size
        except OSError:
            return f"missing file {rel}"
        if actual != size:
            return f"{rel}: size {actual}, expected {size}"
    for rel, digest in manifest["sha256"].items():
        if sha256_file(root / rel) != digest:
            return f"{rel}: checksum mismatch"
    return None


class Entry:
    """One cache entry: ``ensure(build)`` returns its directory, building it once if needed."""

    def __init__(self, kind: str, key: str, base: Path | None = None) -> None:
        self.kind = kind
        self.key = key
        self.parent = (base or cache_dir()) / kind
        self.path = self.parent / key
        self.lock_path = self.parent / f".{key}.lock"

    def ensure(
        self,
        build: Callable[[Path], Iterable[str]],
        log: Callable[[str], None] = lambda _msg: None,
    ) -> Path:
        """``build(tmpdir)`` fills tmpdir and returns the relative paths to checksum."""
        with step("cached-build", kind=self.kind, key=self.key) as record:
            record["cached"] = True
            return self._ensure(build, log, record)

    def _ensure(
        self,
        build: Callable[[Path], Iterable[str]],
        log: Callable[[str], None],
        record: dict[str, object],
    ) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path), timeout=LOCK_TIMEOUT_S)
        try:
            with lock:
                if self.path.exists():
                    problem = verify_manifest(self.path)
                    if problem is None:
                        _used(self.path)
                        return self.path
                    log(f"cache entry {self.kind}/{self.key} is corrupt ({problem}); rebuilding")
                    shutil.rmtree(self.path)
                record["cached"] = False
                tmp = self.parent / f".{self.key}.tmp-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                try:
                    hashed = list(build(tmp))
                    write_manifest(tmp, hashed)
                    os.replace(tmp, self.path)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            prune(self.kind, KEEP.get(self.kind), self.parent.parent)
        except TimeoutError as exc:
            raise LabError(
                f"timed out after {LOCK_TIMEOUT_S:.0f} s waiting for the cache lock "
                f"{self.lock_path}"
            ) from exc
        return self.path


def _used(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def prune(kind: str, keep: int | None, base: Path | None = None) -> list[Path]:
    """Remove the least recently used entries of kind beyond the newest keep, except any used
    within IN_USE_S or locked (being built or checked).  Returns what was removed."""
    if keep is None:
        return []
    parent = (base or cache_dir()) / kind
    try:
        found = [p for p in parent.iterdir() if not p.name.startswith(".") and p.is_dir()]
    except OSError:
        return []
    found.sort(key=_mtime, reverse=True)
    removed: list[Path] = []
    for path in found[keep:]:
        if time.time() - _mtime(path) < IN_USE_S:
            continue
        lock = FileLock(str(parent / f".{path.name}.lock"), timeout=0)
        with contextlib.suppress(Timeout, OSError), lock:
            if time.time() - _mtime(path) >= IN_USE_S:  # not used since: a hit touches it
                shutil.rmtree(path)
                removed.append(path)
    # Half-built entries of killed builds (.KEY.tmp-PID), once they are this old.
    for tmp in parent.glob(".*.tmp-*"):
        if tmp.is_dir() and time.time() - _mtime(tmp) >= IN_USE_S:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def entries(kind: str) -> Iterator[Path]:
    parent = cache_dir() / kind
    if parent.is_dir():
        yield from sorted(p for p in parent.iterdir() if not p.name.startswith("."))


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += Path(dirpath, name).lstat().st_size
    return total
