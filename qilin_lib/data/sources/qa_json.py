"""Open medical QA test sets (generation benchmarks) -> QA records.

- Huatuo-26M test (6,000 pairs), as re-wrapped by ZhongJing (`data/huatuo26M_test.json`): a JSON array of
  `{"id": "", "instruction": ["q"], "input": "", "output": ["a"]}`: question and answer are lists holding
  exactly ONE string, `id` is always empty (the item position becomes the id). The official HF file
  `FreedomIntelligence/huatuo26M-testdatasets` is JSON lines `{"questions": ..., "answers": ...}` and is
  accepted too (string or one-element list).
- cMedQA2 test (Fzkuji's Alpaca conversion): `instruction` is a fixed role prompt ("如果您是医生…"), the
  patient's question is `input`, the reference answer `output`; the role prompt is not part of the question.
"""

from __future__ import annotations

from .. import records
from ._common import ErrorPolicy, load_json_records, one_string


def _huatuo(obj: dict, index: int) -> dict:
    if "questions" in obj:  # official HF jsonl shape
        question, answer = obj["questions"], obj["answers"]
    else:
        question, answer = obj["instruction"], obj["output"]
    return records.qa(id=str(obj.get("id") or index), question=one_string(question, "question"),
                      answer=one_string(answer, "answer"), source="huatuo26m")


def load_huatuo26m_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    return load_json_records(path, "huatuo26m", errors, max_records, _huatuo)


def _cmedqa2(obj: dict, index: int) -> dict:
    return records.qa(id=str(obj.get("id") or index), question=obj["input"] or obj["instruction"],
                      answer=obj["output"], source="cmedqa2")


def load_cmedqa2_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    return load_json_records(path, "cmedqa2", errors, max_records, _cmedqa2)
