"""C-Eval (hkust-nlp/ceval, `ceval-exam.zip`) subject CSVs -> MCQ records.

Format: UTF-8 comma CSV with CRLF record terminators; multi-line fields are quoted and use LF inside (so
the csv module, never a line split). dev: `id,question,A,B,C,D,answer,explanation` (the 5-shot exemplars);
val: `id,question,A,B,C,D,answer`; test has no answer column and is not loadable as MCQ.
The subject is not a column: it comes from the file name `<subject>_<split>.csv` (e.g. clinical_medicine).
`id` restarts at 0 per subject and split, so it is kept as in the file and paired with the subject.
Questions carry a `____` blank and some options LaTeX; both are kept verbatim.
"""

from __future__ import annotations

from pathlib import Path

from .. import records
from ._common import ErrorPolicy, RecordGuard, check_row_width, csv_rows, resolve_path, take

SOURCE = "ceval"
SPLITS = ("dev", "val", "test")


def subject_of(path: str | Path) -> str:
    """`clinical_medicine_dev.csv` -> `clinical_medicine`."""
    stem = Path(path).stem
    for split in SPLITS:
        if stem.endswith(f"_{split}"):
            return stem[: -len(split) - 1]
    return stem


def load_ceval_csv(path, *, errors: ErrorPolicy = "raise", max_records: int = 0, subject: str = ""):
    path = resolve_path(path)
    subject = subject or subject_of(path)
    guard, out = RecordGuard(path, SOURCE, errors), []
    for ref, row in csv_rows(path, required=("id", "question", "A", "B", "C", "D", "answer")):
        if take(out, max_records):
            break
        with guard.record(ref):
            check_row_width(row)
            options = {letter: row[letter] for letter in "ABCD"}
            out.append(records.mcq(id=row["id"].strip(), question=row["question"], options=options,
                                   answer=row["answer"], source=SOURCE,
                                   explanation=row.get("explanation") or "", subject=subject))
    return guard.finish(out)


def load_ceval_subject(root, subject: str, *, errors: ErrorPolicy = "raise") -> dict:
    """{"dev": 5 shot records, "val": scored records} of one subject under a C-Eval directory.

    Layout: `<root>/dev/<subject>_dev.csv` and `<root>/val/<subject>_val.csv`; the shared sample keeps
    only the first third of val under `<root>/val_sample/`, which is accepted as well.
    """
    root = Path(root)
    dev = root / "dev" / f"{subject}_dev.csv"
    for val_dir in ("val", "val_sample"):
        val = root / val_dir / f"{subject}_val.csv"
        if val.exists():
            break
    else:
        raise FileNotFoundError(f"{root}: no val/{subject}_val.csv (nor val_sample/{subject}_val.csv)")
    return {"dev": load_ceval_csv(dev, errors=errors, subject=subject),
            "val": load_ceval_csv(val, errors=errors, subject=subject)}
