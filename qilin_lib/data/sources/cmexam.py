"""CMExam (williamliujl/CMExam, NeurIPS 2023 D&B) multiple-choice questions -> MCQ records.

Formats, all real (see shared/data/cmexam/SOURCE.md):
- official CSV (`test_10_official.csv`): UTF-8 *with BOM*, columns Question, Options, Answer, Explanation
  plus 5 annotation columns on test; Options is one cell `A xxx\\nB yyy` with REAL newlines.
- the xlsx export of val (`val.xlsx`) and its pandas CSV re-save (`val_from_xlsx.csv`): Options use the
  LITERAL two characters backslash + n; the re-save writes the missing answer and empty explanations as
  the string "nan".
- the reconstructed CSV (`test_sample300_reconstructed.csv`): `source_index` (used as id), `answer_text`
  (checked against the option its letter names).
- Fzkuji's Alpaca conversion (`test_sample300.json`): letters stripped, answer given as option TEXT; the
  letter is recovered by position and a text matching zero or several options is an error.

Pitfalls handled: multi-letter answers ("ABC") stay letter sets; option lists that skip a letter (B-E with
no A, or A B D E) keep their real letters, so a letter is never a list index; a row whose answer is
`nan`/empty is skipped and counted even under errors="raise", because the source itself marks it missing
(CMExam's generate_prompt.py skips NaN answers too).
"""

from __future__ import annotations

import re
import zipfile
import zlib

from .. import records
from ._common import (DataFormatError, ErrorPolicy, RecordGuard, check_header, check_row_width, csv_rows,
                      json_records, letter_of_text, letter_options, parse_json_value, resolve_path,
                      split_alpaca_mcq, take)

SOURCE = "cmexam"
REQUIRED_COLUMNS = ("Question", "Options", "Answer")
MISSING_ANSWER = "missing answer (nan) in source"
# One option per line; the line separator is a real newline (official CSV) or a literal "\n" (xlsx).
_OPTION_SPLIT = re.compile(r"\r?\n|\\n")
_OPTION_LINE = re.compile(r"^\s*([A-Z])[\s\u3000.．、:：]+(.*)$")


def parse_options(cell: str) -> dict[str, str]:
    """`A xxx\\nB yyy` -> {"A": "xxx", "B": "yyy"}, keeping each option's own letter."""
    options: dict[str, str] = {}
    for line in _OPTION_SPLIT.split(cell):
        if not line.strip():
            continue
        m = _OPTION_LINE.match(line)
        if not m:
            raise ValueError(f"option line {line[:30]!r} does not start with a letter")
        if m.group(1) in options:
            raise ValueError(f"option letter {m.group(1)} appears twice")
        options[m.group(1)] = m.group(2)
    return options


def _cell(row: dict, name: str) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, float)):  # pandas NaN for an empty spreadsheet cell
        return ""
    value = str(value).strip()
    return "" if value.lower() == "nan" else value  # the CSV re-save wrote NaN as "nan"


def _row_to_mcq(row: dict, default_id: str) -> dict:
    options = parse_options(_cell(row, "Options"))
    answer = re.sub(r"[\s,，、]", "", _cell(row, "Answer"))
    item = records.mcq(id=_cell(row, "source_index") or _cell(row, "id") or default_id,
                       question=_cell(row, "Question"), options=options, answer=answer, source=SOURCE,
                       explanation=_cell(row, "Explanation"), subject=_cell(row, "Medical Discipline"))
    expected = _cell(row, "answer_text")  # reconstructed CSV: the letter must name this text
    if expected and len(item["answer"]) == 1 and item["options"][item["answer"]] != expected:
        raise ValueError(f"answer {item['answer']} is {item['options'][item['answer']]!r}, "
                         f"but answer_text says {expected!r}")
    return item


def _load_rows(path, rows, errors: ErrorPolicy, max_records: int):
    guard, out = RecordGuard(path, SOURCE, errors), []
    for index, (ref, row) in enumerate(rows):
        if take(out, max_records):
            break
        if not _cell(row, "Answer"):  # the source marks it missing: never a format error
            guard.skip(MISSING_ANSWER)
            continue
        with guard.record(ref):
            check_row_width(row)
            out.append(_row_to_mcq(row, default_id=str(index)))
    return guard.finish(out)


def load_cmexam_csv(path, *, errors: ErrorPolicy = "raise", max_records: int = 0,
                    encoding: str = "utf-8"):
    """Official CSV, its xlsx re-save, or the reconstructed CSV (a BOM is dropped by io.read_text)."""
    path = resolve_path(path)
    rows = csv_rows(path, encoding, required=REQUIRED_COLUMNS)
    return _load_rows(path, rows, errors, max_records)


def load_cmexam_xlsx(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    """The Excel export; dtype=str and no NA guessing, so cell text such as "None" stays text."""
    import pandas as pd
    from openpyxl.utils.exceptions import InvalidFileException

    path = resolve_path(path)
    try:
        frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl").fillna("")
    # what openpyxl raises for a file that is no workbook (not a zip, a zip without the xlsx parts,
    # corrupt XML inside); none of them names the file
    except (zipfile.BadZipFile, zlib.error, KeyError, ValueError, SyntaxError, EOFError,
            InvalidFileException) as exc:
        raise DataFormatError(path, None,
                              f"not a readable xlsx workbook ({type(exc).__name__}: {exc})") from exc
    check_header(path, [str(c) for c in frame.columns], REQUIRED_COLUMNS)
    rows = ((f"row {i + 2}", row) for i, row in enumerate(frame.to_dict(orient="records")))
    return _load_rows(path, rows, errors, max_records)


def load_cmexam_alpaca_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    """Fzkuji's Alpaca conversion: `问题：…\\n选项：\\n\\t…`, output = option text -> letter by position.

    Letters by position assume contiguous official options (true for the 9 official rows checked; val
    has 3 of 6,811 rows with gaps, so a few converted test rows may be one letter off).
    """
    path = resolve_path(path)
    guard, out = RecordGuard(path, SOURCE, errors), []
    for index, (ref, value) in enumerate(json_records(path)):
        if take(out, max_records):
            break
        with guard.record(ref):
            obj = parse_json_value(value)
            question, texts = split_alpaca_mcq(obj["input"])
            options = letter_options(texts)
            answer = letter_of_text(options, obj["output"])
            out.append(records.mcq(id=str(obj.get("id") or index), question=question, options=options,
                                   answer=answer, source=SOURCE))
    return guard.finish(out)


__all__ = ["parse_options", "load_cmexam_csv", "load_cmexam_xlsx", "load_cmexam_alpaca_json",
           "MISSING_ANSWER"]
