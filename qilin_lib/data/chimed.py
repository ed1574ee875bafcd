"""ChiMed builders: route uniform records into ChiMed-CPT, ChiMed-SFT and ChiMed-DPO.

The Qilin-Med paper builds three corpora (section 3, "ChiMed"):
- ChiMed-CPT, four subsets: `qa` (Huatuo-26M encyclopedia QA, medical knowledge QA, CMExam), `text`
  (textbooks), `kg` (CPubMed-KG, 39Health-KG, Xywy-KG: all features of one disease entity aggregated into
  one passage) and `dialogue` (doctor-patient dialogues);
- ChiMed-SFT: general and medical instructions, single- and multi-turn, in one uniform conversation format;
- ChiMed-DPO: prompt / chosen / rejected triplets.

Each record kind has one route (`route`), so a new source only needs a loader in `qilin_lib.data.sources`
and a line in the profile. The conversions say in their docstrings which format they emit.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from . import records
from .kg import entity_to_passage

CPT_SUBSETS = ("qa", "text", "kg", "dialogue")
CORPORA = ("cpt", "sft", "dpo")
# Which corpora a record kind can feed, and which it feeds unless a source spec's `stage` says otherwise
# (`stage: all` = every corpus it can feed; dialogues, for instance, go to SFT by default and to the CPT
# `dialogue` subset too when asked).
CAN_FEED = {"cpt": ("cpt",), "qa": ("cpt", "sft"), "mcq": ("cpt", "sft"), "kg": ("cpt",),
            "sft": ("cpt", "sft"), "dpo": ("dpo",), "pubmedqa": ()}
DEFAULT_ROUTES = CAN_FEED | {"sft": ("sft",)}
DEFAULT_SUBSET = {"cpt": "text", "qa": "qa", "mcq": "qa", "kg": "kg", "sft": "dialogue"}


# ------------------------------------------------------------------------------------ conversions
def mcq_prompt(item: dict) -> str:
    """CMExam's prompt layout: the question, then one `A xxx` line per option."""
    lines = [item["question"]] + [f"{letter} {text}" for letter, text in item["options"].items()]
    return "\n".join(lines)


# CMExam's answer/explanation separator, ASCII colon: its fine-tuning answers read "答案: {}. \n 解释:{}"
# (williamliujl/CMExam src/preprocess/prompt_templates.py, template 4, commit
# 79b03f97318b127d932e84d0cc7582618c15156e) and its scoring script cuts the explanation at "解释:"
# (qilin_lib.evaluation.extraction.cmexam_explanation), its answer parser then reading only the first line.
EXPLANATION_MARK = "解释:"


def mcq_response(item: dict) -> str:
    """`答案：{letters}`, then `\n解释:{explanation}` when the item has one (CMExam's separator)."""
    response = f"答案：{item['answer']}"
    return f"{response}\n{EXPLANATION_MARK}{item['explanation']}" if item.get("explanation") else response


def mcq_to_text(item: dict) -> str:
    return f"{mcq_prompt(item)}\n{mcq_response(item)}"


def qa_to_text(item: dict) -> str:
    return f"问：{item['question']}\n答：{item['answer']}"


def conversation_to_text(conv: dict) -> str:
    """A dialogue as plain text for the CPT `dialogue` subset (system prompts dropped)."""
    speaker = {"user": "患者", "assistant": "医生"}
    return "\n".join(f"{speaker[m['role']]}：{m['content']}" for m in conv["messages"] if m["role"] in speaker)


def to_cpt(record: dict, kind: str, subset: str) -> dict:
    text = {"cpt": lambda r: r["text"], "qa": qa_to_text, "mcq": mcq_to_text,
            "kg": entity_to_passage, "sft": conversation_to_text}[kind](record)
    return {**records.cpt(text, record["source"]), "subset": subset}


def to_sft(record: dict, kind: str, category: str) -> dict:
    if kind == "sft":
        conv = record
    elif kind == "qa":
        conv = records.conversation_from_pairs([(record["question"], record["answer"])], record["source"])
    elif kind == "mcq":
        conv = records.conversation_from_pairs([(mcq_prompt(record), mcq_response(record))], record["source"])
    else:
        raise ValueError(f"record kind {kind!r} has no SFT conversion")
    turns = sum(m["role"] == "assistant" for m in conv["messages"])
    return {"messages": conv["messages"], "source": conv["source"], "category": category,
            "turns": "multi" if turns > 1 else "single"}


# ------------------------------------------------------------------------------------------ route
def route_targets(kind: str, spec: dict | None = None) -> tuple[str, ...]:
    """The corpora that records of `kind` feed under a profile source entry `spec`, checked up front.

    spec keys used: `stage` (cpt | sft | dpo | all, default: the kind's default routes), `subset`
    (CPT subset, default per kind) and `category` (SFT: general | medical, default medical).
    """
    spec = spec or {}
    stage = spec.get("stage")
    if stage is None:
        targets = DEFAULT_ROUTES[kind]
    elif stage == "all":
        targets = CAN_FEED[kind]
    elif stage in CAN_FEED[kind]:
        targets = (stage,)
    else:
        raise ValueError(f"source {spec.get('name')!r}: a {kind!r} record cannot feed {stage!r}")
    if spec.get("subset", DEFAULT_SUBSET.get(kind, "text")) not in CPT_SUBSETS:
        raise ValueError(f"source {spec.get('name')!r}: unknown CPT subset {spec['subset']!r}")
    return tuple(corpus for corpus in CORPORA if corpus in targets)


def convert(record: dict, kind: str, corpus: str, spec: dict | None = None) -> dict:
    """One record of `kind` as a record of `corpus` (one of its `route_targets`)."""
    spec = spec or {}
    if corpus == "cpt":
        return to_cpt(record, kind, spec.get("subset", DEFAULT_SUBSET.get(kind, "text")))
    if corpus == "sft":
        return to_sft(record, kind, spec.get("category", "medical"))
    return records.dpo(record["prompt"], record["chosen"], record["rejected"], record["source"])


def route(recs: Iterable[dict], kind: str, spec: dict | None = None) -> dict[str, list[dict]]:
    """Send records of one kind into the corpora it feeds (lists; the data stage streams with `convert`)."""
    targets = route_targets(kind, spec)
    out: dict[str, list[dict]] = defaultdict(list)
    for rec in recs:
        for corpus in targets:
            out[corpus].append(convert(rec, kind, corpus, spec))
    return dict(out)


def dedup_text(record: dict, corpus: str) -> str:
    """The text that deduplication compares for each corpus."""
    if corpus == "cpt":
        return record["text"]
    if corpus == "sft":
        return "\n".join(m["content"] for m in record["messages"])
    # A preference pair is a duplicate only if all three parts are: the same prompt and chosen answer
    # with a different rejected answer is a different training signal.
    return f"{record['prompt']}\n{record['chosen']}\n{record['rejected']}"
