"""The committed-results check: every number committed under results/<profile>/ must be what a fresh run
of the same profile computes (within float tolerance), so no stale or hand-edited number can stay.

    problems = compare_trees("results/tiny", "/tmp/fresh/results/tiny")   # [] when they agree

Compared: the JSON files (train, eval, data stats, case studies), the prediction JSONL files and the
tables' CSV files, value by value: numbers within `rtol`/`atol`, other values exactly. Not compared, because
they describe the run rather than its results: wall times and throughput, provenance (git commit,
package versions, platform), absolute paths (the artifact directory differs per checkout), and the files
derived from the compared ones (Markdown/LaTeX tables, REPORT.md, figures, executed notebooks).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

VOLATILE_KEYS = {"provenance", "wall_s", "train_runtime_s", "train_seconds_this_run", "tokens_per_second",
                 "build_seconds", "created_unix", "seconds"}
COMPARED_SUFFIXES = (".json", ".jsonl", ".csv")
SKIPPED_FILES = {"timings.json"}
SKIPPED_DIRS = {"notebooks"}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and p.suffix in COMPARED_SUFFIXES and p.name not in SKIPPED_FILES
            and not SKIPPED_DIRS & set(p.relative_to(root).parts[:-1])}


def _is_path(value: str) -> bool:
    return value.startswith(("/", "artifacts/", "~")) or "/artifacts/" in value


def compare_values(a, b, where: str, rtol: float, atol: float, out: list[str]) -> None:
    """Append a line per difference between committed `a` and fresh `b` to `out`."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key in VOLATILE_KEYS:
                continue
            if key not in a or key not in b:
                out.append(f"{where}.{key}: {'missing in the fresh run' if key in a else 'not committed'}")
                continue
            compare_values(a[key], b[key], f"{where}.{key}", rtol, atol, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} committed items vs {len(b)} fresh")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            compare_values(x, y, f"{where}[{i}]", rtol, atol, out)
    elif _number(a) and _number(b):
        if not (math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)
                or (math.isnan(float(a)) and math.isnan(float(b)))):
            out.append(f"{where}: committed {a} vs fresh {b}")
    elif isinstance(a, str) and isinstance(b, str) and _is_path(a) and _is_path(b):
        return
    elif a != b:
        out.append(f"{where}: committed {a!r:.80} vs fresh {b!r:.80}")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _load(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text("utf-8"))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    with open(path, encoding="utf-8", newline="") as fh:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _cell(value: str):
    try:
        return float(value) if value not in ("", "nan") else value
    except ValueError:
        return value


def compare_trees(committed: str | Path, fresh: str | Path, rtol: float = 1e-4, atol: float = 1e-6) -> list[str]:
    """Differences between two result trees, one line each naming the file and the value."""
    committed, fresh = Path(committed), Path(fresh)
    if not committed.is_dir():
        return [f"{committed}: no committed results"]
    a_files, b_files = _files(committed), _files(fresh)
    problems = [f"{name}: committed but not written by the fresh run" for name in sorted(a_files - b_files)]
    problems += [f"{name}: written by the fresh run but not committed" for name in sorted(b_files - a_files)]
    for name in sorted(a_files & b_files):
        compare_values(_load(committed / name), _load(fresh / name), name, rtol, atol, problems)
    return problems
