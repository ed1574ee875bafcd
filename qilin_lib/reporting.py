"""Results with provenance, and tables written as Markdown, CSV and LaTeX from one DataFrame.

Every table in results/ is written by `write_table` from numbers computed in the same run; paper numbers
come only from results/paper/reference.json and sit in their own columns beside ours.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd

from .cache import atomic_write_text
from .paths import repo_root

PACKAGES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "deepspeed", "evaluate")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True,
                             text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_root(),
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions(names=PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance() -> dict:
    return {"git_commit": git_commit(), "python": sys.version.split()[0], "platform": platform.platform(),
            "packages": package_versions()}


def write_table(df: pd.DataFrame, directory: str | Path, name: str, caption: str = "") -> dict[str, Path]:
    """Write `name`.md / .csv / .tex atomically; returns the paths. The caption heads the Markdown."""
    directory = Path(directory)
    md = (f"**{caption}**\n\n" if caption else "") + df.to_markdown(index=False) + "\n"
    tex = df.to_latex(index=False, caption=caption or None, label=f"tab:{name}", escape=True)
    paths = {"md": directory / f"{name}.md", "csv": directory / f"{name}.csv", "tex": directory / f"{name}.tex"}
    atomic_write_text(paths["md"], md)
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    atomic_write_text(paths["tex"], tex)
    return paths
