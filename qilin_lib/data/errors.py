"""Errors and skip accounting shared by every loader.

A loader either raises `DataFormatError` naming the file and the record (line, row or key), or, with
`errors="skip"`, skips that record and counts it in `LoadStats`, so that the data statistics can say how
many records each source lost and why.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

ErrorPolicy = Literal["raise", "skip"]


class DataFormatError(ValueError):
    """A record (or a whole file) does not have the format its loader expects."""

    def __init__(self, path: str | Path, record: object, message: str):
        self.path = str(path)
        self.record = record
        self.message = message
        where = f"{self.path}: record {record}" if record is not None else self.path
        super().__init__(f"{where}: {message}")


class UndecodableLine(DataFormatError):
    """A line whose bytes do not decode in the file's encoding.

    Under errors="skip" it is counted under a reason that names the file and the line, since the fix is
    in those bytes; such lines are rare (a file that does not decode at all is one file error).
    """

    def __init__(self, path: str | Path, lineno: int, encoding: str, detail: str):
        super().__init__(path, f"line {lineno}", f"not valid {encoding} {detail}")
        self.skip_reason = f"not valid {encoding}: {self.path} line {lineno}"


@dataclass
class LoadStats:
    """How many records a loader kept and skipped, and why it skipped them."""

    source: str
    path: str
    loaded: int = 0
    skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)   # the first few skips, with record and message
    MAX_EXAMPLES = 3

    def as_dict(self) -> dict:
        return {"source": self.source, "path": self.path, "loaded": self.loaded,
                "skipped": self.skipped, "skip_reasons": dict(self.reasons), "skip_examples": list(self.examples)}


class Records(list):
    """A list of uniform records that also carries the `LoadStats` of the load that made it."""

    def __init__(self, items=(), stats: LoadStats | None = None):
        super().__init__(items)
        self.stats = stats


class RecordGuard:
    """Wraps the parsing of one record: re-raises with file + record, or skips and counts.

        guard = RecordGuard(path, "cmexam_csv", errors)
        for row_no, row in enumerate(rows, start=2):
            with guard.record(f"row {row_no}"):
                out.append(parse(row))
        return guard.finish(out)
    """

    # Exceptions that mean "this record is malformed"; anything else is a bug and propagates.
    MALFORMED = (DataFormatError, KeyError, ValueError, TypeError, IndexError, AttributeError)

    def __init__(self, path: str | Path, source: str, errors: ErrorPolicy = "raise"):
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        self.path = str(path)
        self.errors = errors
        self.stats = LoadStats(source=source, path=self.path)

    @contextlib.contextmanager
    def record(self, ref: object) -> Iterator[None]:
        try:
            yield
        except self.MALFORMED as exc:
            message = exc.message if isinstance(exc, DataFormatError) else _describe(exc)
            if self.errors == "raise":
                raise DataFormatError(self.path, ref, message) from exc
            self.stats.skipped += 1
            reason = exc.skip_reason if isinstance(exc, UndecodableLine) else message.split(":")[0][:80]
            self.stats.reasons[reason] += 1
            if len(self.stats.examples) < LoadStats.MAX_EXAMPLES:
                self.stats.examples.append(f"{ref}: {message}"[:200])

    def skip(self, reason: str) -> None:
        """Count a record that the source itself marks as unusable (e.g. a `nan` answer)."""
        self.stats.skipped += 1
        self.stats.reasons[reason] += 1

    def finish(self, records: list) -> Records:
        self.stats.loaded = len(records)
        return Records(records, self.stats)


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return f"{type(exc).__name__}: {exc}"
