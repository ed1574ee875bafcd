"""The committed-results check: every number committed under results/<profile>/ must be what a fresh run
of the same profile computes, so no stale or hand-edited number can stay.

    report = check_results("results/tiny", "/tmp/fresh/results/tiny")   # report.problems == [] when they agree

Two modes, chosen by the numerics fingerprint in the results' provenance (qilin_lib.numerics):
- **exact**: both trees were computed with the same fingerprint (same instruction-set path, threads, torch
  build), so a fresh run reproduces every bit; every number (rtol 1e-4), every string and every prediction
  must match (`compare_trees`).
- **claims**: the fingerprints differ (another architecture, numerics not pinned, a mixed tree): the low
  bits of training differ and amplify, so predictions and model hashes legitimately change. Every metric
  of the result JSON and the tables (what the report claims) must then agree within the tolerances
  measured from runs that differ only in numerics (results_tolerances.json beside this module, written by
  `measure_tolerances`; how they were measured is recorded in it). A stale or hand-edited number beyond
  that spread still fails, and so does a metric with no measured tolerance that differs at all.

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
from dataclasses import dataclass, field
from pathlib import Path

from .cache import atomic_write_json, canonical_json

# `key`: an artifact's cache address (config + code hash, like a path); its content is `output_hash`.
VOLATILE_KEYS = {"provenance", "key", "wall_s", "train_runtime_s", "train_seconds_this_run", "tokens_per_second",
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


# ------------------------------------------------------------------------------------------ modes
TOLERANCES_FILE = Path(__file__).with_name("results_tolerances.json")
# Model outputs rather than claims: compared only when the numerics match (exact mode).
OUTPUT_FILES = ("predictions/", "case_studies.json", "tables/case_studies.")
# A metric read as a ratio of its size (perplexities, losses, log-prob margins, rewards); any other as points.
RELATIVE_WORDS = ("ppl", "perplexity", "loss", "margin", "reward", "logp")
SAFETY = 2.0     # tolerance = SAFETY x the largest difference measured in the metric's family


@dataclass
class CheckReport:
    mode: str                          # "exact" or "claims"
    problems: list[str]
    committed_numerics: dict | None
    fresh_numerics: dict | None
    notes: list[str] = field(default_factory=list)


def tree_numerics(root: str | Path) -> dict | None:
    """The numerics fingerprint all result JSONs of a tree share, or None (none recorded, or mixed)."""
    prints = set()
    for path in Path(root).glob("*.json"):
        data = json.loads(path.read_text("utf-8"))
        numerics = data.get("provenance", {}).get("numerics") if isinstance(data, dict) else None
        if numerics is not None or (isinstance(data, dict) and "provenance" in data):
            prints.add(canonical_json(numerics))
    return json.loads(prints.pop()) if len(prints) == 1 else None


def check_results(committed: str | Path, fresh: str | Path, tolerances: dict | None = None) -> CheckReport:
    """Exact comparison when both trees ran the same numerics, else the claims within measured tolerances."""
    mine, theirs = tree_numerics(committed), tree_numerics(fresh)
    if mine is not None and mine == theirs:
        return CheckReport("exact", compare_trees(committed, fresh), mine, theirs)
    tolerances = tolerances if tolerances is not None else load_tolerances()
    problems, notes = compare_claims(committed, fresh, tolerances)
    return CheckReport("claims", problems, mine, theirs, notes)


def load_tolerances() -> dict:
    return json.loads(TOLERANCES_FILE.read_text("utf-8")) if TOLERANCES_FILE.exists() else {"families": {}}


# ---------------------------------------------------------------------------------- claims mode
def _claim_files(root: Path) -> set[str]:
    return {name for name in _files(root) if not name.startswith(OUTPUT_FILES) and not name.endswith(".jsonl")}


def numeric_leaves(a, b, path: tuple = ()):
    """(path, committed, fresh) for every pair of numbers at the same place; ("structure", ...) for a key
    or list length that differs. Strings are skipped: in claims mode they are hashes and model outputs."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key in VOLATILE_KEYS:
                continue
            if key not in a or key not in b:
                yield ("structure", path + (key,), "missing in the fresh run" if key in a else "not committed")
                continue
            yield from numeric_leaves(a[key], b[key], path + (key,))
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield ("structure", path, f"{len(a)} committed items vs {len(b)} fresh")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            yield from numeric_leaves(x, y, path + (i,))
    elif _number(a) and _number(b):
        yield ("number", path, (float(a), float(b)))


# A 95% interval's bounds (JSON `<metric>_ci95: [lo, hi]`, table columns `<column> ci95_lo` / `ci95_hi`)
# belong to their metric's family: a bound moves with its metric when the numerics change (Wilson bounds
# shift with the count; bootstrap bounds with the per-item values, the resamples being fixed by the seed),
# so the metric's measured spread is the bound's tolerance, and a bound needs no family of its own.
INTERVAL_SUFFIXES = ("_ci95", " ci95_lo", " ci95_hi")


def _metric_key(key: str) -> str:
    for suffix in INTERVAL_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def family(name: str, path: tuple) -> str:
    """The metric a number belongs to, across models: a table's column, or a result file's kind (the model
    left out of eval_<model>_<task>) with the keys down to the number, e.g. `eval_cmexam:metrics/loglik/
    groups/taught/accuracy`. Fine families keep one noisy metric (a 5-item group) from widening the others.
    An interval bound is in its metric's family (INTERVAL_SUFFIXES)."""
    keys = "/".join(_metric_key(str(k)) for k in path if not isinstance(k, int))
    stem = Path(name).stem
    if name.startswith("tables/"):
        return f"table {stem}:{keys}"
    parts = stem.split("_")
    if parts[0] == "eval" and len(parts) > 2:
        stem = "_".join([parts[0], *parts[2:]])
    return f"{stem}:{keys}"


def is_relative(fam: str, path: tuple) -> bool:
    text = " ".join([fam, *map(str, path)]).lower()
    return any(word in text for word in RELATIVE_WORDS)


def _difference(fam: str, path: tuple, a: float, b: float) -> float:
    if is_relative(fam, path):
        return abs(a - b) / max(abs(a), abs(b), 1e-12)
    return abs(a - b)


def compare_claims(committed: str | Path, fresh: str | Path, tolerances: dict) -> tuple[list[str], list[str]]:
    """Claims mode: structure exactly, strings of the tables exactly, every number within its family's
    measured tolerance (none measured: float noise only). Returns (problems, notes)."""
    committed, fresh = Path(committed), Path(fresh)
    families = tolerances.get("families", {})
    a_files, b_files = _claim_files(committed), _claim_files(fresh)
    problems = [f"{name}: committed but not written by the fresh run" for name in sorted(a_files - b_files)]
    problems += [f"{name}: written by the fresh run but not committed" for name in sorted(b_files - a_files)]
    unmeasured = set()
    for name in sorted(a_files & b_files):
        a, b = _load(committed / name), _load(fresh / name)
        if name.endswith(".csv"):
            problems += _table_strings(name, a, b)
        for kind, path, detail in numeric_leaves(a, b):
            where = name + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)
            if kind == "structure":
                problems.append(f"{where}: {detail}")
                continue
            x, y = detail
            if math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-6) or (math.isnan(x) and math.isnan(y)):
                continue
            fam = family(name, path)
            if fam not in families:
                unmeasured.add(fam)
                problems.append(f"{where}: committed {x} vs fresh {y} (no measured tolerance for {fam!r})")
                continue
            diff, tol = _difference(fam, path, x, y), families[fam]["tolerance"]
            if diff > tol:
                unit = "relative" if families[fam]["relative"] else "absolute"
                problems.append(f"{where}: committed {x} vs fresh {y}: {unit} difference {diff:.4g} > "
                                f"tolerance {tol:.4g} ({fam})")
    notes = [f"no measured tolerance for {fam!r}: rerun measure_tolerances" for fam in sorted(unmeasured)]
    return problems, notes


def _table_strings(name: str, a: list[dict], b: list[dict]) -> list[str]:
    """Row labels and other text cells of a table must match exactly in either mode."""
    out = []
    for i, (x, y) in enumerate(zip(a, b)):
        for col in sorted(set(x) & set(y)):
            if isinstance(x[col], str) and x[col] != y[col] and not (_number(x[col]) or _number(y[col])):
                out.append(f"{name}[{i}].{col}: committed {x[col]!r:.80} vs fresh {y[col]!r:.80}")
    return out


# ---------------------------------------------------------------------------- measuring the spread
def measure_tolerances(committed: str | Path, variants: list[str | Path], how: str) -> dict:
    """Per metric family, the largest difference between the committed tree and trees computed by the same
    code with other numerics (SAFETY x that is the tolerance); `how` records how the variants were made."""
    committed = Path(committed)
    seen: dict[str, dict] = {}
    runs = []
    for variant in map(Path, variants):
        runs.append({"tree": str(variant), "numerics": tree_numerics(variant)})
        for name in sorted(_claim_files(committed) & _claim_files(variant)):
            for kind, path, detail in numeric_leaves(_load(committed / name), _load(variant / name)):
                if kind != "number":
                    continue
                fam = family(name, path)
                entry = seen.setdefault(fam, {"relative": is_relative(fam, path), "max_difference": 0.0,
                                              "values": 0, "differing": 0})
                diff = _difference(fam, path, *detail)
                entry["values"] += 1
                entry["differing"] += diff > 0
                entry["max_difference"] = max(entry["max_difference"], diff)
    for entry in seen.values():
        entry["tolerance"] = SAFETY * entry["max_difference"]
    return {"how": how, "safety": SAFETY, "committed_numerics": tree_numerics(committed), "variants": runs,
            "families": dict(sorted(seen.items()))}


def write_tolerances(measured: dict, path: Path = TOLERANCES_FILE) -> Path:
    return atomic_write_json(path, measured)
