"""Where things live. Notebooks find earlier stages' outputs through these functions, never globals.

- results/<profile>/    JSON written by runs, tables/, REPORT.md, executed notebooks (committed)
- figures/<profile>/    PNG/PDF figures (committed)
- artifacts/<profile>/  datasets, tokenizers, checkpoints (gitignored, keyed by config hash)
- qilin_lib/<module>.py the code a cache key covers (`source_hash`)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """$QILIN_ROOT, else the checkout this package sits in (editable install), else the working dir."""
    env = os.environ.get("QILIN_ROOT")
    if env:
        return Path(env).resolve()
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists() and (candidate / "notebooks").is_dir():
        return candidate
    return Path.cwd().resolve()


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _profile_dir(kind: str, profile: str) -> Path:
    """results/, figures/ or artifacts/ of a profile, not created."""
    return (artifacts_root() if kind == "artifacts" else repo_root() / kind) / profile


def results_dir(profile: str) -> Path:
    return _ensure(_profile_dir("results", profile))


def tables_dir(profile: str) -> Path:
    return _ensure(results_dir(profile) / "tables")


def figures_dir(profile: str) -> Path:
    return _ensure(_profile_dir("figures", profile))


def artifacts_dir(profile: str) -> Path:
    """Large outputs; $QILIN_ARTIFACTS moves them (e.g. to a scratch disk on a GPU node)."""
    return _ensure(_profile_dir("artifacts", profile))


def ensure_writable(profile: str) -> None:
    """Raise PermissionError naming the first of results/, figures/ and artifacts/<profile> that cannot take
    a new file. Stages call this before their work, so a read-only checkout fails in a second rather than
    after hours of training. It writes a file instead of reading mode bits: root ignores those, but not a
    read-only mount or a regular file where the directory should be."""
    for kind in ("results", "figures", "artifacts"):
        path = _profile_dir(kind, profile)
        try:
            with tempfile.NamedTemporaryFile(dir=_ensure(path), prefix=".write-check-"):
                pass
        except OSError as err:
            raise PermissionError(f"{path}: the {kind} directory of profile {profile!r} is not writable "
                                  f"({err.strerror or err}); checked before any training started") from err


def source_hash(*modules: str) -> str:
    """A hash of these package modules' names and source (paths relative to qilin_lib/, e.g.
    "train/sft.py"), for cache keys: a fix to the code that built an artifact rebuilds it."""
    digest = hashlib.sha256()
    for rel in sorted(set(modules)):
        digest.update(rel.encode() + b"\0" + (PACKAGE_DIR / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def shared_dir() -> Path:
    """The read-only folder beside the checkout (../shared: data samples, reference model code), whether or
    not this machine has it; $QILIN_SHARED moves it ($QILIN_SHARED_DATA, its data/ folder, implies it)."""
    if env := os.environ.get("QILIN_SHARED"):
        return Path(env).resolve()
    if env := os.environ.get("QILIN_SHARED_DATA"):
        return Path(env).resolve().parent
    return repo_root().parent / "shared"





def artifacts_root() -> Path:
    """The folder holding every profile's artifacts/<profile> ($QILIN_ARTIFACTS or <repo>/artifacts)."""
    env = os.environ.get("QILIN_ARTIFACTS")
    return Path(env) if env else repo_root() / "artifacts"


# Placeholders a profile may start a path with, so that a shipped profile names files beside the checkout
# or in the artifact cache wherever those are on this machine (paper-smoke does).
PATH_PLACEHOLDERS = {"{shared}": shared_dir, "{artifacts}": artifacts_root}


def expand_path(text: str) -> str:
    """`{shared}/data/x.json` -> /abs/shared/data/x.json; any other string unchanged."""
    for placeholder, root in PATH_PLACEHOLDERS.items():
        if text.startswith(placeholder + "/"):
            return str(root() / text[len(placeholder) + 1:])
    return text
