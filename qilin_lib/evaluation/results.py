"""The run's result files read back as table cells: every table (qilin_lib.evaluation.tables and each
benchmark's own, qilin_lib.evaluation.benchmarks) is built from these, never from numbers held elsewhere.

    res = Results("tiny")
    res.get("sft", "cmexam", "loglik", "accuracy")        # the raw metric
    _val(res, "sft", "cmexam", "loglik", "accuracy")      # rounded x100 cell with its 95% interval

Every number of ours carries its 95% interval (qilin_lib.evaluation.intervals; `<metric>_ci95` in the
result JSON): the CSV keeps it machine-readable in two columns beside the value, `<column> ci95_lo` and
`<column> ci95_hi`; Markdown and LaTeX show one cell `24.4 [19.6, 29.5]`. Published rows
(results/paper/reference.json) have no interval.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..paths import results_dir
from .intervals import SUFFIX, IntervalSpec, excludes_zero
from .reference import load_reference

STAGE_ORDER = ("base", "dcpt", "sft", "dpo")
MODEL_ORDER = (*STAGE_ORDER, "adapt")


def load_results(profile: str) -> list[dict]:
    """Every eval_*.json of a profile, in file-name order."""
    return [json.loads(p.read_text("utf-8")) for p in sorted(Path(results_dir(profile)).glob("eval_*.json"))]


class Results:
    """eval_*.json of one profile, looked up by (model, task) and a key path into `metrics`."""

    def __init__(self, profile: str):
        self.profile = profile
        self.by_key = {(r["model"], r["task"]): r for r in load_results(profile)}
        # the stages in pipeline order, then models evaluated under their own label (external checkpoints)
        self.models = [m for m in MODEL_ORDER if any(k[0] == m for k in self.by_key)] + \
            sorted({k[0] for k in self.by_key} - set(MODEL_ORDER))
        self._predictions: dict[tuple[str, str], list[dict]] = {}

    def has(self, model: str, task: str) -> bool:
        return (model, task) in self.by_key

    def get(self, model: str, task: str, *path: str) -> float | None:
        node = self.by_key.get((model, task), {}).get("metrics")
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def tasks(self) -> set[str]:
        return {task for _, task in self.by_key}

    def interval_spec(self, model: str, task: str) -> IntervalSpec:
        """The resamples and seed the run drew its intervals with (defaults for older results)."""
        recorded = self.by_key.get((model, task), {}).get("protocol", {}).get("intervals") or {}
        default = IntervalSpec()
        return IntervalSpec(recorded.get("resamples", default.resamples), recorded.get("seed", default.seed))

    def correctness(self, model: str, task: str, mode: str) -> dict[str, dict[str, float]]:
        """{group: {item id: 1.0 if right else 0.0}} of one scoring mode, from predictions/<model>_<task>.jsonl
        (generate: the first parser's reading, as the tables' generate column); {} without that file."""
        path = results_dir(self.profile) / "predictions" / f"{model}_{task}.jsonl"
        if (model, task) not in self._predictions:
            rows = [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()] if path.exists() else []
            self._predictions[(model, task)] = rows
        out: dict[str, dict[str, float]] = {}
        for row in self._predictions[(model, task)]:
            if row["mode"] == mode and row.get("group"):
                out.setdefault(row["group"], {})[row["id"]] = float(bool(row["pred"]) and row["pred"] == row["answer"])
        return out


def _r(value, digits: int = 1):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, digits)


LO, HI = " ci95_lo", " ci95_hi"   # CSV columns of a value's interval: "<column> ci95_lo", "<column> ci95_hi"
MARK = " *"                       # a difference whose interval excludes 0
DIFFERENCE = "Δ "                 # the `items` label of a difference row starts with it (display_frame marks it)


class Estimate(float):
    """A table value with its 95% interval: a float to every reader (comparisons, plots), expanded by
    `frame` into the value and its `ci95_lo` / `ci95_hi` columns."""

    def __new__(cls, value: float, interval, digits: int = 1):
        est = super().__new__(cls, round(value, digits))
        est.lo, est.hi = (round(float(b), digits) for b in interval)
        est.digits = digits
        return est


def value(res: Results, model: str, task: str, *path: str, digits: int = 1):
    """The metric at `path`, rounded, as an Estimate when the result holds its interval beside it."""
    number = _r(res.get(model, task, *path), digits)
    interval = res.get(model, task, *path[:-1], path[-1] + SUFFIX) if path else None
    return number if number is None or interval is None else Estimate(number, interval, digits)


def first_parser(res: Results, model: str, task: str) -> str:
    """The parser the run listed first (the table's): the benchmark's own answer extraction."""
    parsers = res.by_key.get((model, task), {}).get("protocol", {}).get("parsers") or ["cmexam"]
    return parsers[0]


def generate_value(res: Results, model: str, task: str, parser: str, key: str = "accuracy", group: str = ""):
    """A generate-mode metric as one answer parser read the outputs."""
    path = ("generate", parser) + (("by_group", group) if group else ()) + (key,)
    return value(res, model, task, *path)


def mode_value(res: Results, model: str, task: str, mode: str, key: str = "accuracy", group: str = ""):
    """A metric of one scoring mode (generate: as the run's first parser read it), optionally of one group."""
    if mode == "generate":
        return generate_value(res, model, task, first_parser(res, model, task), key, group)
    path = (mode,) + (("by_group", group) if group else ()) + (key,)
    return value(res, model, task, *path)


def frame(rows: list[dict]) -> pd.DataFrame:
    """A table from row dicts, each Estimate expanded into its value and `ci95_lo` / `ci95_hi` columns."""
    expanded, digits = [], {}
    for row in rows:
        out = {}
        for key, cell in row.items():
            out[key] = float(cell) if isinstance(cell, Estimate) else cell
            if isinstance(cell, Estimate):
                out[key + LO], out[key + HI] = cell.lo, cell.hi
                digits[key] = cell.digits
        expanded.append(out)
    df = pd.DataFrame(expanded)
    df.attrs["digits"] = digits  # what display_frame prints each interval column with
    return df


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x))


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Markdown / LaTeX / notebook view: `value [lo, hi]` in one cell and the interval columns dropped;
    difference rows (`items` starting with DIFFERENCE) are signed and get MARK where the interval excludes 0."""
    marked = df["items"].astype(str).str.startswith(DIFFERENCE) if "items" in df.columns else None
    out = df.copy()
    for col in [c for c in df.columns if f"{c}{LO}" in df.columns]:
        cells = []
        for i, (v, lo, hi) in enumerate(zip(df[col], df[col + LO], df[col + HI])):
            if not (_number(v) and _number(lo) and _number(hi)):
                cells.append(v)
                continue
            difference = marked is not None and bool(marked.iloc[i])
            mark = MARK if difference and excludes_zero((lo, hi)) else ""
            d = df.attrs.get("digits", {}).get(col, 1)
            cells.append(f"{v:{'+' if difference else ''}.{d}f} [{lo:.{d}f}, {hi:.{d}f}]{mark}")
        out[col] = pd.Series(cells, index=df.index, dtype=object)
        out = out.drop(columns=[col + LO, col + HI])
    return out


def published_rows(benchmark: str, columns: dict[str, str], note: str = "") -> list[dict]:
    """Published rows: {column: value} mapped from reference metric names, with their source."""
    rows: dict[str, dict] = {}
    for e in load_reference():
        if e["benchmark"] == benchmark and e["metric"] in columns:
            row = rows.setdefault(e["model"], {"model": e["model"], "kind": "published", "source": set()})
            row[columns[e["metric"]]] = e["value"]
            row["source"].add(e["source"] + (f" ({e['note']})" if e.get("note") else ""))
    return [r | {"source": "; ".join(sorted(r["source"])) + note} for r in rows.values()]
