"""`qilin reproduce`: execute the numbered notebooks headless with papermill, in order.

Executed copies go to results/<profile>/notebooks/ (kept on failure, with the traceback), wall times to
results/<profile>/timings.json. A failing notebook stops the run, names the notebook and the failing
cell, and leaves the results of earlier notebooks intact.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .cache import atomic_write_json
from .notebooks import notebook_pairs
from .paths import results_dir


class NotebookFailed(RuntimeError):
    def __init__(self, notebook: str, cell: str, error: str, executed: Path):
        self.notebook, self.cell, self.executed = notebook, cell, executed
        super().__init__(f"notebook {notebook} failed in {cell}: {error}\n  executed copy: {executed}")


@dataclass
class NotebookRun:
    name: str
    seconds: float
    executed: Path


def select(names: list[str], only: list[str] | None = None, start: str | None = None) -> list[str]:
    """Filter notebook stems by `--only 01,03` and `--from 02` (prefixes or full stems)."""
    def matches(stem: str, key: str) -> bool:
        return stem == key or stem.split("_")[0] == key.zfill(2)

    if start is not None:
        idx = next((i for i, n in enumerate(names) if matches(n, start)), None)
        if idx is None:
            raise ValueError(f"--from {start!r} names no notebook; have {', '.join(names)}")
        names = names[idx:]
    if only:
        unknown = [k for k in only if not any(matches(n, k) for n in names)]
        if unknown:
            raise ValueError(f"--only {','.join(unknown)} names no notebook; have {', '.join(names)}")
        names = [n for n in names if any(matches(n, k) for k in only)]
    return names


def run_notebooks(profile: str = "tiny", only: list[str] | None = None, start: str | None = None,
                  force: bool = False, parameters: dict | None = None, progress: bool = True,
                  notebooks: Path | None = None) -> list[NotebookRun]:
    import papermill as pm

    pairs = {py.stem: ipynb for py, ipynb in notebook_pairs(notebooks)}
    out_dir = results_dir(profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "force": force, **(parameters or {})}
    runs = []
    for name in select(list(pairs), only, start):
        executed = out_dir / f"{name}.ipynb"
        print(f"[qilin] running {name} (profile {profile})", flush=True)
        start_t = time.perf_counter()
        try:
            pm.execute_notebook(str(pairs[name]), str(executed), parameters=params, progress_bar=progress,
                                cwd=str(pairs[name].parent), kernel_name="python3")
        except pm.PapermillExecutionError as err:
            raise NotebookFailed(name, f"cell {err.exec_count} ({err.ename})", err.evalue, executed) from None
        runs.append(NotebookRun(name, round(time.perf_counter() - start_t, 1), executed))
        print(f"[qilin] {name} done in {runs[-1].seconds:.1f} s", flush=True)
        _record_timing(profile, runs[-1])
    return runs


def _record_timing(profile: str, run: NotebookRun) -> None:
    path = results_dir(profile) / "timings.json"
    timings = json.loads(path.read_text("utf-8")) if path.exists() else {}
    timings[run.name] = run.seconds
    atomic_write_json(path, timings)
