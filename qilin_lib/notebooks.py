"""Notebook plumbing: jupytext pairs (the `py:percent` file is the source of truth), output-free commits,
and headless execution with papermill.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat

from .paths import notebooks_dir

KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def notebook_pairs(directory: Path | None = None) -> list[tuple[Path, Path]]:
    """(py, ipynb) for every numbered notebook, in execution order."""
    directory = directory or notebooks_dir()
    return [(py, py.with_suffix(".ipynb")) for py in sorted(directory.glob("[0-9][0-9]_*.py"))]


def _cells(nb) -> list[tuple[str, str, tuple]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def render_ipynb(py: Path) -> nbformat.NotebookNode:
    """The output-free .ipynb that pairs with `py`."""
    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def sync(directory: Path | None = None) -> list[Path]:
    """Write every .ipynb from its .py; returns the notebooks that changed."""
    changed = []
    for py, ipynb in notebook_pairs(directory):
        nb = render_ipynb(py)
        if not ipynb.exists() or problems(py, ipynb):
            jupytext.write(nb, ipynb)
            changed.append(ipynb)
    return changed


def problems(py: Path, ipynb: Path) -> list[str]:
    """Why a pair is not committable: missing half, cells out of sync, outputs, no parameters/kernel."""
    if not ipynb.exists():
        return [f"{ipynb.name}: missing (run `qilin notebooks sync`)"]
    found = []
    committed = nbformat.read(ipynb, as_version=4)
    if _cells(committed) != _cells(jupytext.read(py)):
        found.append(f"{ipynb.name}: cells differ from {py.name} (run `qilin notebooks sync`)")
    if any(c.cell_type == "code" and (c.get("outputs") or c.get("execution_count")) for c in committed.cells):
        found.append(f"{ipynb.name}: carries outputs or execution counts")
    if not any("parameters" in c.metadata.get("tags", ()) for c in committed.cells):
        found.append(f"{ipynb.name}: no cell tagged `parameters`")
    if committed.metadata.get("kernelspec", {}).get("name") != KERNEL["name"]:
        found.append(f"{ipynb.name}: kernelspec is not {KERNEL['name']!r}")
    return found


def check(directory: Path | None = None) -> list[str]:
    return [p for py, ipynb in notebook_pairs(directory) for p in problems(py, ipynb)]
