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

from . import numerics
from .cache import atomic_write_text
from .paths import repo_root

PACKAGES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "deepspeed", "evaluate")


# What a run rewrites itself: changes there do not make the code that produced them differ from the commit.
RUN_OUTPUTS = ("results/", "figures/")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=10,
                          check=True).stdout


def git_state() -> dict:
    """The commit, and whether the code differs from it: uncommitted or untracked files outside results/
    and figures/ (which the run itself rewrites). `dirty_paths` names a few. Outside a checkout: unknown."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        changed = [line[3:] for line in _git("status", "--porcelain", "--untracked-files=all").splitlines()]
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "code_dirty": None, "dirty_paths": []}
    code = [path for path in changed if not path.strip('"').startswith(RUN_OUTPUTS)]
    return {"commit": commit, "code_dirty": bool(code), "dirty_paths": code[:10]}


def committed_results(profile: str) -> bool:
    """Whether results/<profile> of this checkout is under version control (a sandbox or a new profile is not)."""
    try:
        return bool(_git("ls-files", "--", f"results/{profile}").strip())
    except (OSError, subprocess.SubprocessError):
        return False


def package_versions(names=PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance() -> dict:
    """Where a number came from: code (commit + dirty flag), packages, machine, and the numerics
    fingerprint that the committed-results check compares (qilin_lib.numerics)."""
    git = git_state()
    return {"git_commit": git["commit"], "code_dirty": git["code_dirty"], "dirty_paths": git["dirty_paths"],
            "python": sys.version.split()[0], "platform": platform.platform(), "packages": package_versions(),
            "cpu": numerics.cpu(), "numerics": numerics.fingerprint()}


def markdown(df: pd.DataFrame) -> str:
    """`df` as a Markdown table, a missing value (None / NaN: a task or mode the profile does not run) an
    empty cell rather than "nan"."""
    return df.astype(object).where(df.notna(), None).to_markdown(index=False, missingval="")


def write_table(df: pd.DataFrame, directory: str | Path, name: str, caption: str = "",
                display: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write `name`.md / .csv / .tex atomically; returns the paths. The caption heads the Markdown. `display`:
    what Markdown and LaTeX show instead of `df` (evaluation tables: `value [lo, hi]` cells, while the CSV
    keeps the interval bounds in columns of their own)."""
    directory = Path(directory)
    shown = df if display is None else display
    md = (f"**{caption}**\n\n" if caption else "") + markdown(shown) + "\n"
    tex = shown.to_latex(index=False, caption=caption or None, label=f"tab:{name}", escape=True, na_rep="")
    paths = {"md": directory / f"{name}.md", "csv": directory / f"{name}.csv", "tex": directory / f"{name}.tex"}
    atomic_write_text(paths["md"], md)
    atomic_write_text(paths["csv"], df.to_csv(index=False))
    atomic_write_text(paths["tex"], tex)
    return paths
