"""PubMedQA PQA-L (pubmedqa/pubmedqa `data/ori_pqal.json`; HF `qiaojin/PubMedQA` pqa_labeled) -> items.

Repo format: ONE JSON object keyed by PMID string (ASCII with \\uXXXX escapes, which json decodes):
`{"QUESTION", "CONTEXTS": [..], "LABELS": [..] (one per context), "MESHES", "YEAR",
"reasoning_required_pred", "reasoning_free_pred", "final_decision", "LONG_ANSWER"}`.
HF row format: `{"pubid", "question", "context": {"contexts", "labels", "meshes"}, "long_answer",
"final_decision"}`.

Both become the PubMedQA item {"id", "question", "context", "contexts", "labels", "answer",
"long_answer", "source"} that the benchmark reads. The gold label is `final_decision` and must be
yes/no/maybe; `reasoning_*_pred` are single annotators' labels, not predictions, and are dropped. The
reasoning-required setting uses question + contexts; LONG_ANSWER is kept only for reasoning-free use.
"""

from __future__ import annotations

from typing import Iterable

from ..io import read_json
from ._common import DataFormatError, ErrorPolicy, RecordGuard, resolve_path, take

SOURCE = "pubmedqa"
LABELS = ("yes", "no", "maybe")
HUB_ID = "qiaojin/PubMedQA"


def pubmedqa_item(pmid, question, contexts, labels, answer, long_answer="") -> dict:
    if not isinstance(contexts, list) or not contexts or not all(isinstance(c, str) for c in contexts):
        raise ValueError("contexts must be a non-empty list of strings")
    labels = list(labels or [])
    if labels and len(labels) != len(contexts):
        raise ValueError(f"{len(labels)} labels for {len(contexts)} contexts")
    answer = str(answer).strip().lower()
    if answer not in LABELS:
        raise ValueError(f"final_decision {answer!r} is not one of {'/'.join(LABELS)}")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question is empty")
    contexts = [c.strip() for c in contexts]
    return {"id": str(pmid), "question": question.strip(), "context": "\n".join(contexts),
            "contexts": contexts, "labels": [str(x) for x in labels], "answer": answer,
            "long_answer": (long_answer or "").strip(), "source": SOURCE}


def load_pubmedqa_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    path = resolve_path(path)
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DataFormatError(path, None, f"expected a JSON object keyed by PMID, got {type(doc).__name__}")
    guard, out = RecordGuard(path, SOURCE, errors), []
    for pmid, obj in doc.items():
        if take(out, max_records):
            break
        with guard.record(f"key {pmid!r}"):
            out.append(pubmedqa_item(pmid, obj["QUESTION"], obj["CONTEXTS"], obj.get("LABELS"),
                                     obj["final_decision"], obj.get("LONG_ANSWER", "")))
    return guard.finish(out)


def load_pubmedqa_rows(rows: Iterable[dict], *, origin: str = HUB_ID, errors: ErrorPolicy = "raise",
                       max_records: int = 0):
    """Rows of HF `qiaojin/PubMedQA` pqa_labeled (a `datasets.Dataset` iterates as such dicts)."""
    guard, out = RecordGuard(origin, SOURCE, errors), []
    for i, row in enumerate(rows):
        if take(out, max_records):
            break
        with guard.record(f"item {i}"):
            ctx = row["context"]
            out.append(pubmedqa_item(row["pubid"], row["question"], list(ctx["contexts"]),
                                     ctx.get("labels"), row["final_decision"], row.get("long_answer", "")))
    return guard.finish(out)


def load_pubmedqa_hub(split: str = "train", *, errors: ErrorPolicy = "raise", max_records: int = 0):
    """PQA-L from the hub (1,000 labelled items, one `train` split; the official test half is the
    500 PMIDs of the repo's test_ground_truth.json). Needs network or a warm HF cache."""
    import datasets

    rows = datasets.load_dataset(HUB_ID, "pqa_labeled", split=split)
    return load_pubmedqa_rows(rows, origin=f"{HUB_ID}:pqa_labeled:{split}", errors=errors,
                              max_records=max_records)
