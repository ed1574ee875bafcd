"""What deduplication decided: one `Decision` per document, and the counts of a run (`DedupReport`).

The report is what the data stage writes to data_stats.json, so `as_dict` leaves the timing out (a
rerun must give the same dict).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

from .normalize import NORMALIZATION


class Decision(NamedTuple):
    """What happened to the document at `index` (0-based position in the input stream)."""
    index: int
    keep: bool
    reason: str                    # "kept" | "exact" | "near"
    dup_of: int | None = None      # index of the earlier document it duplicates: for "near" a kept one;
    #                                for "exact" the first occurrence of the same normalised text
    #                                (which may itself have been removed as a near duplicate)
    similarity: float | None = None  # estimated n-gram Jaccard with dup_of (near duplicates)
    short: bool = False            # shorter than min_chars: only exact-deduplicated


@dataclass
class SourceCounts:
    total: int = 0
    exact_removed: int = 0
    near_removed: int = 0
    kept: int = 0
    short: int = 0                 # documents only exact-checked (shorter than min_chars)


@dataclass
class DedupReport:
    total: int = 0
    exact_removed: int = 0
    near_removed: int = 0
    kept: int = 0
    short: int = 0
    per_source: dict[str, SourceCounts] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    bands: int = 0
    rows: int = 0
    normalization: str = NORMALIZATION
    seconds: float = 0.0
    index_bytes: int = 0           # dedup state in RAM at the end (LSH and exact-hash runs)
    index_disk_bytes: int = 0      # stored rows of the kept documents in the temporary file at the end

    def add(self, source: str, d: Decision) -> None:
        sc = self.per_source.setdefault(source, SourceCounts())
        for obj in (self, sc):
            obj.total += 1
            obj.short += d.short
            if d.keep:
                obj.kept += 1
            elif d.reason == "exact":
                obj.exact_removed += 1
            else:
                obj.near_removed += 1

    def as_dict(self) -> dict:
        """Everything but the timing (so that the dict is deterministic), plus a `thresholds` summary."""
        out = dataclasses.asdict(self)
        out.pop("seconds")
        out["thresholds"] = {k: self.config.get(k) for k in
                             ("lsh_threshold", "verify_threshold", "order_ratio", "char_threshold", "min_chars")}
        out["thresholds"].update(bands=self.bands, rows=self.rows)
        return out
