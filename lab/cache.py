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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from filelock import FileLock

from lab.errors import LabError
from lab.paths import cache_dir
from lab.steplog import step

MANIFEST = "manifest.json"
LOCK_TIMEOUT_S = 1800.0


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
    for rel, size in manifest["sizes"].items():
        if rel == MANIFEST:
            continue
        try:
            actual = (root / rel).stat().st_size
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
        except TimeoutError as exc:
            raise LabError(
                f"timed out after {LOCK_TIMEOUT_S:.0f} s waiting for the cache lock "
                f"{self.lock_path}"
            ) from exc
        return self.path


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
