"""Published numbers, loaded from results/paper/reference.json: the only place paper numbers enter tables.

The file holds `{"description": ..., "entries": [...]}`; each entry is one published cell
`{"benchmark", "model", "metric", "value", "source", "note"?}` copied from DESIGN.md section 5 with the
paper, repository file or leaderboard it comes from. Cells no source gives are absent, never estimated, so
`reference_table` shows them as NaN beside our own numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..paths import repo_root

REQUIRED = ("benchmark", "model", "metric", "value", "source")


def default_path() -> Path:
    return repo_root() / "results" / "paper" / "reference.json"


def _validate(index: int, entry: object) -> None:
    missing = [key for key in REQUIRED if key not in entry] if isinstance(entry, dict) else list(REQUIRED)
    if missing:
        raise ValueError(f"reference entry {index} is not an object with {missing}: {entry!r}")
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"reference entry {index} has a non-numeric value {value!r}")
    for key in ("benchmark", "model", "metric", "source"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ValueError(f"reference entry {index} has an empty {key!r}")


def load_reference(path: str | Path | None = None) -> list[dict]:
    """Every published cell, validated; raises ValueError naming the first malformed entry's index."""
    doc = json.loads(Path(path or default_path()).read_text(encoding="utf-8"))
    entries = doc.get("entries") if isinstance(doc, dict) and isinstance(doc.get("entries"), list) else None
    if entries is None:
        raise ValueError(f"{path or default_path()}: expected an object with an 'entries' list")
    for index, entry in enumerate(entries):
        _validate(index, entry)
    return entries


def reference_table(benchmark: str, metrics: list[str], path: str | Path | None = None) -> pd.DataFrame:
    """One row per model with at least one of `metrics` published on `benchmark` (index "model", in file
    order), one column per metric (NaN where unpublished), and "source": its distinct sources joined by "; "."""
    rows: dict[str, dict] = {}
    for entry in load_reference(path):
        if entry["benchmark"] != benchmark or entry["metric"] not in metrics:
            continue
        row = rows.setdefault(entry["model"], {"sources": []})
        row[entry["metric"]] = float(entry["value"])
        if entry["source"] not in row["sources"]:
            row["sources"].append(entry["source"])
    return pd.DataFrame(
        [{**{m: row.get(m, math.nan) for m in metrics}, "source": "; ".join(row["sources"])} for row in rows.values()],
        index=pd.Index(list(rows), name="model"), columns=[*metrics, "source"],
    )
