"""Where things live. Notebooks find earlier stages' outputs through these functions, never globals.

- results/<profile>/    JSON written by runs, tables/, REPORT.md, executed notebooks (committed)
- figures/<profile>/    PNG/PDF figures (committed)
- artifacts/<profile>/  datasets, tokenizers, checkpoints (gitignored, keyed by config hash)
"""

from __future__ import annotations

import os
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


def results_dir(profile: str) -> Path:
    return _ensure(repo_root() / "results" / profile)


def tables_dir(profile: str) -> Path:
    return _ensure(results_dir(profile) / "tables")


def figures_dir(profile: str) -> Path:
    return _ensure(repo_root() / "figures" / profile)


def artifacts_dir(profile: str) -> Path:
    """Large outputs; $QILIN_ARTIFACTS moves them (e.g. to a scratch disk on a GPU node)."""
    base = os.environ.get("QILIN_ARTIFACTS")
    return _ensure((Path(base) if base else repo_root() / "artifacts") / profile)


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def shared_data_dir() -> Path | None:
    """The real dataset samples beside the checkout (../shared/data), if this machine has them."""
    env = os.environ.get("QILIN_SHARED_DATA")
    candidate = Path(env) if env else repo_root().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None
