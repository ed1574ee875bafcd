"""Helpers that several source loaders share: reading rows/lines so that ONE bad record is ONE error.

The loaders decode and parse each line inside `RecordGuard.record(...)`, so that `errors="skip"` skips just
that line and counts it, be it invalid JSON or invalid bytes.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import DataFormatError, ErrorPolicy, LoadStats, Records, RecordGuard, UndecodableLine
from ..io import iter_lines, read_text, resolve_path
from ..records import LETTERS


class RecordStream:
    """The records of one source, read lazily: iterate it once. `stats` (LoadStats) fills as it goes,
    skips as the guard meets them and `loaded` as records come out, and is complete once the iteration
    has ended. Loaders whose format can be read record by record (ChiMed's multi-GB cpt.txt / sft.jsonl)
    build one from a generator; `of(records)` wraps a loaded list, whose stats are complete already.
    """

    def __init__(self, records: Iterable[dict], stats: LoadStats, *, counted: bool = False):
        self._records = records
        self.stats = stats
        self._counted = counted  # True when `stats.loaded` already holds the count (a loaded list)
        self._started = False

    @classmethod
    def of(cls, records: Records) -> "RecordStream":
        return cls(records, records.stats, counted=True)

    def __iter__(self) -> Iterator[dict]:
        if self._started:  # a second pass would count every record twice, and a generator is spent
            raise RuntimeError(f"{self.stats.path}: a RecordStream is read once; open the source again")
        self._started = True
        for record in self._records:
            if not self._counted:
                self.stats.loaded += 1
            yield record

    def to_records(self) -> Records:
        """All records as a list (what the `load_*` functions return)."""
        return Records(list(self), self.stats)


class RawLine(str):
    """A JSON line not parsed yet: `parse_json_value` parses it inside the guard of its record."""


def parse_json_value(value: Any) -> Any:
    if isinstance(value, UndecodableLine):  # raised here, i.e. inside its record's guard
        raise value
    return json.loads(value) if isinstance(value, RawLine) else value


def json_records(path: str | Path, encoding: str = "utf-8") -> list[tuple[str, Any]]:
    """(reference, value) pairs of a JSON document, JSON lines, or concatenated JSON objects.

    Whatever the extension says: several real `.json` files are JSON lines (MedicalGPT reward/test.json,
    BenTsao llama_data.json), and Qilin-Med's own create_dpo_data.py appends `json.dumps(indent=4)`
    objects one after another. JSON-lines values come back as `RawLine`, or as the `UndecodableLine` of a
    line whose bytes do not decode (parse either with `parse_json_value`).
    References: "item N" (array), "line N" (JSON lines), "object N" (concatenated). A top-level object is
    ONE record (a one-line JSON-lines file); sources keyed by id (PubMedQA, xywy) use io.read_json.
    """
    try:
        text = read_text(path, encoding)
    except DataFormatError:  # JSON lines lose only their undecodable lines; a document cannot
        if _is_json_lines(lines := list(json_lines(path, encoding))):
            return lines
        raise
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if _is_json_lines(lines := list(json_lines(path, encoding))):
            return lines
        if exc.msg == "Extra data":
            return _concatenated(path, text)
        raise DataFormatError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    if isinstance(doc, list):
        return [(f"item {i}", obj) for i, obj in enumerate(doc)]
    if isinstance(doc, dict):
        return [("line 1", doc)]
    raise DataFormatError(path, None, f"expected a JSON array or object, got {type(doc).__name__}")


def _is_json_lines(lines: list[tuple[str, RawLine | UndecodableLine]]) -> bool:
    """Some early line is a whole object on its own (a pretty-printed document's lines never are); bad
    lines then fail one by one, inside their record's guard."""
    return len(lines) > 1 and any(isinstance(value, str) and _is_object_line(value) for _, value in lines[:5])


def _is_object_line(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _concatenated(path, text: str) -> list[tuple[str, Any]]:
    decoder, pos, out = json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:  # nothing after a broken object can be trusted
            raise DataFormatError(path, f"object {len(out)} (line {exc.lineno})",
                                  f"invalid JSON: {exc.msg}") from None
        out.append((f"object {len(out)}", obj))


def json_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[str, RawLine | UndecodableLine]]:
    """Stream ("line N", RawLine) from a JSON-lines file, decoding line by line (files of many GB)."""
    for lineno, value in iter_lines(path, encoding):
        yield f"line {lineno}", value if isinstance(value, UndecodableLine) else RawLine(value)


def csv_rows(path: str | Path, encoding: str = "utf-8", delimiter: str = ",",
             required: Iterable[str] = ()) -> Iterator[tuple[str, dict]]:
    """("row N", row dict) with N counted as a spreadsheet does (header = row 1).

    The csv module, never a line split: real files quote fields with embedded newlines. Decoding goes
    through `io.read_text`, so a wrong encoding names the encoding to declare (Toyhom is GBK).
    """
    text = read_text(path, encoding)
    reader = csv.DictReader(_stdio.StringIO(text, newline=""), delimiter=delimiter)
    check_header(path, reader.fieldnames or [], required)
    for row_no, row in enumerate(reader, start=2):
        yield f"row {row_no}", row


def check_header(path: str | Path, header: list, required: Iterable[str]) -> None:
    """A file error, whatever the errors policy: without its columns every row would be skipped."""
    missing = [c for c in required if c not in header]
    if missing:
        raise DataFormatError(path, "row 1", f"header lacks column(s) {missing}; it has {header}")


def check_row_width(row: dict) -> None:
    """csv.DictReader puts surplus cells under None and fills missing ones with None."""
    if None in row:
        raise ValueError(f"row has {len(row) - 1 + len(row[None])} fields, header has {len(row) - 1}")
    short = [k for k, v in row.items() if v is None]
    if short:
        raise ValueError(f"row is missing field(s) {short}")


def one_string(value: Any, name: str) -> str:
    """A string, or a list holding exactly one string (Huatuo-26M wraps each field in a list)."""
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"{name} is a list of {len(value)} items, expected exactly 1")
        value = value[0]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    return value


def letter_options(texts: list[str]) -> dict[str, str]:
    """Options given by position (letters stripped by a converter) -> {"A": ..., "B": ...}."""
    if len(texts) > len(LETTERS):
        raise ValueError(f"{len(texts)} options is more than there are letters")
    return {LETTERS[i]: t for i, t in enumerate(texts)}


def letter_of_text(options: dict[str, str], answer_text: str) -> str:
    """Recover the letter of an answer given as option text; zero or several matches are errors."""
    target = answer_text.strip()
    hits = [letter for letter, text in options.items() if text.strip() == target]
    if not hits:
        raise ValueError(f"answer text {target!r} matches no option")
    if len(hits) > 1:
        raise ValueError(f"answer text {target!r} is ambiguous: it matches options {''.join(hits)}")
    return hits[0]


_ALPACA_MCQ = re.compile(r"^\s*问题[:：](?P<q>.*?)\n\s*选项[:：]\s*\n(?P<opts>.*)$", re.S)


def split_alpaca_mcq(text: str) -> tuple[str, list[str]]:
    """`问题：<q>\\n选项：\\n\\t<opt>\\n\\t<opt>...` (Fzkuji's CMExam/MedQA conversions) -> (q, options)."""
    m = _ALPACA_MCQ.match(text)
    if not m:
        raise ValueError("input is not '问题：...\\n选项：\\n\\t...'")
    options = [line.strip() for line in m.group("opts").split("\n") if line.strip()]
    return m.group("q").strip(), options


def take(out: list, max_records: int) -> bool:
    """True once `max_records` records are loaded (0 means no limit)."""
    return bool(max_records) and len(out) >= max_records


def merge_stats(source: str, path: str, guards: list[RecordGuard], records: list) -> Records:
    """One `LoadStats` for a load that read several files (e.g. the 18 xywy KG files)."""
    stats = LoadStats(source=source, path=path, loaded=len(records))
    for g in guards:
        stats.skipped += g.stats.skipped
        stats.reasons.update(g.stats.reasons)
    return Records(records, stats)


def render_history(history: Any) -> str:
    """Earlier [user, assistant] turns as plain text, for formats whose record has one prompt string."""
    if not history:
        return ""
    parts = []
    for i, turn in enumerate(history):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise ValueError(f"history turn {i} is not a [user, assistant] pair")
        parts.append(f"用户：{str(turn[0]).strip()}\n助手：{str(turn[1]).strip()}")
    return "\n".join(parts)


__all__ = ["RecordStream", "RawLine", "parse_json_value", "json_records", "json_lines", "csv_rows",
           "check_header", "check_row_width", "one_string", "letter_options", "letter_of_text",
           "split_alpaca_mcq", "take", "merge_stats", "render_history", "resolve_path", "RecordGuard", "ErrorPolicy", "Records",
           "DataFormatError", "UndecodableLine"]


def load_json_records(path, source: str, errors: ErrorPolicy, max_records: int, parse) -> Records:
    """The loop every JSON / JSON-lines loader shares: `parse(obj, index)` per record, under a guard."""
    path = resolve_path(path)
    guard, out = RecordGuard(path, source, errors), []
    for index, (ref, value) in enumerate(json_records(path)):
        if take(out, max_records):
            break
        with guard.record(ref):
            out.append(parse(parse_json_value(value), index))
    return guard.finish(out)
