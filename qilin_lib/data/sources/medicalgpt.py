"""shibing624/MedicalGPT demo data (medical subsets) -> CPT, SFT, DPO and QA records.

- `data/pretrain/fever.txt`: plain text, one paragraph per line (an OCR'd infectious-disease textbook);
  headings ("第一节感染与免疫", "（二）隐性感染") are separate short lines. A heading alone teaches little
  and skews the length distribution, so the HEADING RULE: a stripped line of at most 20 characters that
  does not end with sentence punctuation (。！？；!?;…) is a heading and is prefixed, with a newline, to the
  next paragraph (consecutive headings accumulate); a line wholly in brackets, such as the chapter author
  "（李兰娟）", is an attribution and is appended to the previous paragraph instead; headings left at the
  end of the file are appended to the last paragraph. -> CPT records.
- `data/sft/medical_sft_1K_format.jsonl`: ShareGPT, `conversations` of {"from": human|gpt|system,
  "value"}. -> SFT records (multi-turn kept).
- `data/reward/test.json`: JSON LINES despite .json; question / response_chosen / response_rejected
  (chosen = doctor/encyclopedia answer, rejected = a model's). -> DPO triplets.
- `data/rag/medical_corpus.txt`: JSON lines with Chinese keys {"问", "答"}. -> QA records.
"""

from __future__ import annotations

import re

from .. import records
from ..io import read_text
from ._common import ErrorPolicy, RecordGuard, load_json_records, resolve_path, take

HEADING_MAX_CHARS = 20
_SENTENCE_END = tuple("。！？；!?;…")
_ATTRIBUTION = re.compile(r"^[（(【\[][^（）()【】\[\]]{1,12}[）)】\]]$")
# input/output: the released ChiMed sft.jsonl, as the authors' reader takes it (williamliujl/Qilin-Med
# scripts/supervised_finetuning.py: the turns alternate `from: input` / `from: output`).
SHAREGPT_ROLES = {"human": "user", "user": "user", "input": "user", "gpt": "assistant", "assistant": "assistant",
                  "output": "assistant", "system": "system"}


def is_heading(line: str) -> bool:
    return len(line) <= HEADING_MAX_CHARS and not line.endswith(_SENTENCE_END)


def paragraphs(lines) -> list[str]:
    """Non-empty lines -> paragraphs with headings merged forward and attributions merged back."""
    out: list[str] = []
    pending: list[str] = []
    for line in (raw.strip() for raw in lines):
        if not line:
            continue
        if _ATTRIBUTION.match(line) and out and not pending:
            out[-1] += line
        elif is_heading(line):
            pending.append(line)
        else:
            out.append("\n".join(pending + [line]))
            pending = []
    if pending:
        if out:
            out[-1] += "\n" + "\n".join(pending)
        else:
            out.append("\n".join(pending))
    return out


def load_medicalgpt_pretrain_txt(path, *, errors: ErrorPolicy = "raise", max_records: int = 0,
                                 source: str = "medicalgpt_pretrain"):
    path = resolve_path(path)
    guard, out = RecordGuard(path, source, errors), []
    for i, text in enumerate(paragraphs(read_text(path).splitlines())):
        if take(out, max_records):
            break
        with guard.record(f"paragraph {i}"):
            out.append(records.cpt(text, source))
    return guard.finish(out)


def sharegpt_messages(turns: list) -> list[dict]:
    """ShareGPT {"from", "value"} turns -> {"role", "content"} messages."""
    if not isinstance(turns, list):
        raise ValueError("conversations must be a list")
    messages = []
    for i, turn in enumerate(turns):
        role = SHAREGPT_ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            raise ValueError(f"turn {i}: unknown speaker {turn.get('from')!r}")
        messages.append({"role": role, "content": turn["value"]})
    return messages




def load_medicalgpt_sft_jsonl(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    source = "medicalgpt_sft"
    return load_json_records(path, source, errors, max_records,
                       lambda obj, _: records.sft(sharegpt_messages(obj["conversations"]), source))


def load_medicalgpt_reward_jsonl(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    source = "medicalgpt_reward"
    return load_json_records(path, source, errors, max_records,
                       lambda obj, _: records.dpo(obj["question"], obj["response_chosen"],
                                               obj["response_rejected"], source))


def load_medicalgpt_rag_jsonl(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    source = "medicalgpt_rag"
    # the file has no ids: a record's position in the file is its id
    return load_json_records(path, source, errors, max_records,
                       lambda obj, index: records.qa(str(index), obj["问"], obj["答"], source))
