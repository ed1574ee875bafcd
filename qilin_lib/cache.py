"""The artifact cache: one directory per (stage, config, inputs), complete only once fully written.

A stage's output directory is `artifacts/<profile>/<stage>-<key>` where `key` hashes the stage's config
and the hashes of its inputs. Outputs are written into a temporary sibling directory and renamed into
place only after the manifest (file list with sizes and SHA-256) is written, so a crash never leaves a
directory that looks complete. A rerun with the same config and inputs finds the directory and reuses it.

Concurrency: each key has a lock file `.<stage>-<key>.lock` next to its directory (kept forever: deleting
a lock file races with a process about to lock it). A writer holds it exclusively for the whole `writing()`
block, so two forced rebuilds of one key run one after the other instead of interleaving their
rmtree + rename, and a temporary directory of that key exists only while its writer holds the lock: a tmp
directory whose key lock is free was left by a killed run and is removed by the next writer. Readers take
it shared (`reading()`, which `complete` and `manifest` use), so the manifest and the files they read
belong to one version; a reader waits for a rebuild in progress.

    art = StageArtifact(profile, "data", config=cfg_dict, inputs={"kb": kb_hash})
    if not art.complete or force:
        with art.writing() as out:          # out: a temporary directory
            build_everything_into(out)
    art.path, art.manifest["output_hash"]   # the hash downstream stages use as their input
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from .paths import artifacts_dir

MANIFEST = "manifest.json"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def hash_obj(obj: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]


def hash_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write through a temp file in the same directory and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are ordinary shared files
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


# Lock files this process holds. flock locks conflict between two descriptors of ONE process, so a reader
# inside its own process's writer (`art.complete` within `art.writing()`) must not lock again.
_HELD: set[Path] = set()


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    if path in _HELD:
        if mode == fcntl.LOCK_EX:  # a nested writer would delete the outer one's tmp dir as stale
            raise RuntimeError(f"{path}: this process already holds the artifact lock; cannot write")
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, mode)
        _HELD.add(path)
        try:
            yield
        finally:
            _HELD.discard(path)
    finally:
        os.close(fd)  # releases the lock


def _try_lock(path: Path) -> int | None:
    """A descriptor holding `path` exclusively, or None if a live process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _remove_stale_tmp(parent: Path, own_name: str) -> None:
    """Remove `.<stage>-<key>.<random>.tmp` dirs of killed writers: those of `own_name` (whose lock the
    caller holds) and those of other keys whose lock is free; a live writer's lock is never free."""
    for tmp in parent.glob(".*.tmp"):
        name = tmp.name[1:-len(".tmp")].rpartition(".")[0]  # mkdtemp's random part has no dot
        if not name or not tmp.is_dir():  # atomic_write_text's tmp files are not artifacts
            continue
        if name == own_name:
            shutil.rmtree(tmp, ignore_errors=True)  # best effort: a leftover never fails a publish
            continue
        fd = _try_lock(parent / f".{name}.lock")
        if fd is not None:
            try:
                shutil.rmtree(tmp, ignore_errors=True)
            finally:
                os.close(fd)


class StageArtifact:
    def __init__(self, profile: str, stage: str, config: Any, inputs: dict[str, str] | None = None,
                 root: str | Path | None = None):
        self.profile, self.stage = profile, stage
        self.config, self.inputs = config, dict(inputs or {})
        self.key = hash_obj({"stage": stage, "config": config, "inputs": self.inputs})
        self.path = Path(root or artifacts_dir(profile)) / f"{stage}-{self.key}"
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the key's lock shared: no writer replaces the directory while the block reads it.

            with art.reading():
                if art.complete:
                    files = art.manifest["files"]   # and the files on disk are that version's
        """
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(_locked(self.lock_path, fcntl.LOCK_SH))
            except FileNotFoundError:  # no artifacts directory yet: nothing to read, nothing to lock
                pass
            except OSError as exc:  # a read-only store has no writers to wait for
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
            yield

    @property
    def complete(self) -> bool:
        with self.reading():
            try:
                return json.loads((self.path / MANIFEST).read_text("utf-8")).get("complete") is True
            except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
                return False

    @property
    def manifest(self) -> dict:
        with self.reading():
            if not self.complete:
                raise FileNotFoundError(f"{self.path}: stage {self.stage!r} has no complete artifact")
            return json.loads((self.path / MANIFEST).read_text("utf-8"))

    @contextlib.contextmanager
    def writing(self, extra: dict | None = None) -> Iterator[Path]:
        """Yield a temporary directory; on success it becomes `self.path` with a complete manifest.

        `extra` is read when the block ends, so a caller can put run facts that must not change the
        output hash (wall times) into it from inside the block; they land in the manifest only.
        The key's lock is held exclusively throughout (see the module docstring).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.lock_path, fcntl.LOCK_EX):
            _remove_stale_tmp(self.path.parent, self.path.name)
            tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"))
            try:
                yield tmp
                files = {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": hash_file(p)}
                         for p in sorted(tmp.rglob("*")) if p.is_file()}
                manifest = {"stage": self.stage, "profile": self.profile, "key": self.key,
                            "config": self.config, "inputs": self.inputs, "files": files,
                            "output_hash": hash_obj(files), "created_unix": int(time.time()),
                            "complete": True, **(extra or {})}
                (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str),
                                            encoding="utf-8")
                # A forced rebuild, or an old incomplete attempt: the old directory is renamed aside
                # (into a name the stale-tmp cleanup knows) before it is deleted, so a run killed
                # mid-delete never leaves a half-deleted directory that still holds its manifest.
                old = tmp.with_name(tmp.name[:-len(".tmp")] + "_old.tmp")
                if self.path.exists():
                    os.replace(self.path, old)
                os.replace(tmp, self.path)
                shutil.rmtree(old, ignore_errors=True)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
