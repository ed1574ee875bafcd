"""Chinese licensing-exam MCQ sets in JSON -> MCQ records: MedQA Mainland (MCMLE) and CNMLEQA.

- MedQA Mainland test, Fzkuji's Alpaca conversion (`data/MedQA/zh/multiple-choice/test.json`):
  `input = "问题：…\\n选项：\\n\\t<opt>\\n\\t<opt>…"`, letters stripped, `output` = the answer's option
  TEXT. Letters are recovered by position (A..D). One record of the full 3,426 has its answer text twice
  among the options: an ambiguous answer is an error naming the record (skippable with errors="skip").
- CNMLEQA (zonghui0228/CNMLEQA `CNMLEQA-3k.json`): fields `opa`..`ope`, and `answer` is a FIELD NAME
  ("opb"), not a letter. `question_type` (案例分析/知识问答) becomes the subject. Its own `source` field
  names where the question was collected from and is not our record source.
"""

from __future__ import annotations

from .. import records
from ._common import (
    ErrorPolicy,
    letter_of_text,
    letter_options,
    load_json_records,
    split_alpaca_mcq,
)

CNMLEQA_FIELDS = {f"op{c.lower()}": c for c in "ABCDE"}




def _medqa(obj: dict, index: int) -> dict:
    question, texts = split_alpaca_mcq(obj["input"])
    options = letter_options(texts)
    return records.mcq(id=str(obj.get("id") or index), question=question, options=options,
                       answer=letter_of_text(options, obj["output"]), source="medqa_mainland")


def load_medqa_alpaca_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    return load_json_records(path, "medqa_mainland", errors, max_records, _medqa)


def _cnmleqa(obj: dict, index: int) -> dict:
    options = {letter: obj[field] for field, letter in CNMLEQA_FIELDS.items() if field in obj}
    answer = str(obj["answer"]).strip().lower()
    if answer not in CNMLEQA_FIELDS:
        raise ValueError(f"answer {obj['answer']!r} is not one of {', '.join(CNMLEQA_FIELDS)}")
    return records.mcq(id=str(obj.get("id") or index), question=obj["question"], options=options,
                       answer=CNMLEQA_FIELDS[answer], source="cnmleqa",
                       subject=str(obj.get("question_type") or ""))


def load_cnmleqa_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    return load_json_records(path, "cnmleqa", errors, max_records, _cnmleqa)
