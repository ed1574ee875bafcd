"""The artifact cache: one directory per (stage, config, inputs), complete only once fully written.

A stage's output directory is `artifacts/<profile>/<stage>-<key>` where `key` hashes the stage's config
and the hashes of its inputs. Outputs are written into a temporary sibling directory and renamed into
place only after the manifest (file list with sizes and SHA-256) is written, so a crash never leaves a
directory that looks complete. A rerun with the same config and inputs finds the directory and reuses it.

    art = StageArtifact(profile, "data", config=cfg_dict, inputs={"kb": kb_hash})
    if not art.complete or force:
        with art.writing() as out:          # out: a temporary directory
            build_everything_into(out)
    art.path, art.manifest["output_hash"]   # the hash downstream stages use as their input
"""

from __future__ import annotations

import contextlib
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


class StageArtifact:
    def __init__(self, profile: str, stage: str, config: Any, inputs: dict[str, str] | None = None,
                 root: str | Path | None = None):
        self.profile, self.stage = profile, stage
        self.config, self.inputs = config, dict(inputs or {})
        self.key = hash_obj({"stage": stage, "config": config, "inputs": self.inputs})
        self.path = Path(root or artifacts_dir(profile)) / f"{stage}-{self.key}"

    @property
    def complete(self) -> bool:
        manifest = self.path / MANIFEST
        if not manifest.exists():
            return False
        try:
            return json.loads(manifest.read_text("utf-8")).get("complete") is True
        except json.JSONDecodeError:
            return False

    @property
    def manifest(self) -> dict:
        if not self.complete:
            raise FileNotFoundError(f"{self.path}: stage {self.stage!r} has no complete artifact")
        return json.loads((self.path / MANIFEST).read_text("utf-8"))

    @contextlib.contextmanager
    def writing(self, extra: dict | None = None) -> Iterator[Path]:
        """Yield a temporary directory; on success it becomes `self.path` with a complete manifest.

        `extra` is read when the block ends, so a caller can put run facts that must not change the
        output hash (wall times) into it from inside the block; they land in the manifest only.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
            if self.path.exists():  # a forced rebuild, or an old incomplete attempt
                shutil.rmtree(self.path)
            os.replace(tmp, self.path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
