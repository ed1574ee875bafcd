"""Toyhom/Chinese-medical-dialogue-data department CSVs (doctor-patient QA) -> single-turn SFT records.

Format: comma CSV with header `department,title,ask,answer` (the README calls the third column
`question`; the real header says `ask`). PITFALLS: the encoding is GBK, not the GB2312 the README
claims (the file holds GBK-only lead bytes such as 0x89), so the default encoding is "gbk"; reading it
as UTF-8 fails through `io.read_text`, whose error says to declare gbk. Some fields hold quoted newlines:
the csv module parses records, never a line split.

User turn: the patient's `title` is usually a one-line summary of `ask`. It is kept in front of `ask`
(on its own line) only when it adds something, i.e. when `ask` neither equals nor contains it.
"""

from __future__ import annotations

from .. import records
from ._common import ErrorPolicy, RecordGuard, check_row_width, csv_rows, resolve_path, take

SOURCE = "toyhom_dialogue"


def patient_turn(title: str, ask: str) -> str:
    title, ask = (title or "").strip(), (ask or "").strip()
    if not title or title in ask:
        return ask
    if not ask:
        return title
    return f"{title}\n{ask}"


def load_toyhom_csv(path, *, errors: ErrorPolicy = "raise", max_records: int = 0, encoding: str = "gbk"):
    path = resolve_path(path)
    guard, out = RecordGuard(path, SOURCE, errors), []
    for ref, row in csv_rows(path, encoding, required=("title", "ask", "answer")):
        if take(out, max_records):
            break
        with guard.record(ref):
            check_row_width(row)
            user = patient_turn(row["title"], row["ask"])
            out.append(records.conversation_from_pairs([(user, row["answer"])], SOURCE))
    return guard.finish(out)
