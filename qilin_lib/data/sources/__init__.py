"""One loader per real source format -> the uniform records of `records.py` (DESIGN.md section 2).

Every loader has the signature `load_xxx(path, *, errors="raise", max_records=0) -> Records`: a malformed
record raises `DataFormatError` naming the file and the record ("row 7", "line 12", "key '3'", "item 4");
with `errors="skip"` it is skipped and counted in `Records.stats`. Records that the SOURCE marks as
unusable (a CMExam `nan` answer, two identical ranked responses) are skipped and counted under either
policy. `max_records` (0 = all) stops after that many records. Paths may be `hf://datasets/<repo>/<file>`.
`open_source(name, path, ...)` gives the same records as a `RecordStream`, read lazily where the format
allows (STREAMS: the released ChiMed files), with its `LoadStats` filled as the records are read.

Record kinds (LOADER_KINDS): "mcq", "qa", "cpt", "sft", "dpo" as in records.py; "pubmedqa" items
{"id", "question", "context", "contexts", "labels", "answer" (yes/no/maybe), "long_answer", "source"};
"kg" disease entities {"id", "name", "description", "symptoms", "causes", "department", "examinations",
"drugs", "complications" (lists of non-empty stripped strings), "extra" ({attribute: str}), "source"},
the schema the KG-to-text module reads (built by `kg_schema.kg_entity`).
"""

from __future__ import annotations

from typing import Callable

from .kg_schema import KG_LIST_FIELDS, kg_entity
from ._common import RecordStream
from .ceval import load_ceval_csv, load_ceval_subject
from .chimed import (iter_chimed_cpt_txt, iter_chimed_sft_jsonl, load_chimed_cpt_txt, load_chimed_dpo_json,
                     load_chimed_sft_jsonl, stream_chimed_cpt_txt, stream_chimed_dpo_json,
                     stream_chimed_sft_jsonl)
from .cmexam import load_cmexam_alpaca_json, load_cmexam_csv, load_cmexam_xlsx, parse_options
from .exam_json import load_cnmleqa_json, load_medqa_alpaca_json
from .kg_instruct import load_kg_instruct_jsonl
from .medicalgpt import (load_medicalgpt_pretrain_txt, load_medicalgpt_rag_jsonl,
                         load_medicalgpt_reward_jsonl, load_medicalgpt_sft_jsonl)
from .pubmedqa import load_pubmedqa_hub, load_pubmedqa_json, load_pubmedqa_rows
from .qa_json import load_cmedqa2_json, load_huatuo26m_json
from .qasystem_kg import load_qasystem_dicts, load_qasystem_kg_csv
from .toyhom import load_toyhom_csv
from .xywy_kg import load_xywy_kg_json
from .zhongjing import load_cmtmedqa_json, load_zhongjing_ranking, load_zhongjing_ranking_input

# name -> (loader, record kind)
_REGISTRY: dict[str, tuple[Callable, str]] = {
    "cmexam_csv": (load_cmexam_csv, "mcq"),
    "cmexam_xlsx": (load_cmexam_xlsx, "mcq"),
    "cmexam_alpaca_json": (load_cmexam_alpaca_json, "mcq"),
    "ceval_csv": (load_ceval_csv, "mcq"),
    "huatuo26m_json": (load_huatuo26m_json, "qa"),
    "pubmedqa_json": (load_pubmedqa_json, "pubmedqa"),
    "medqa_alpaca_json": (load_medqa_alpaca_json, "mcq"),
    "cnmleqa_json": (load_cnmleqa_json, "mcq"),
    "xywy_kg_json": (load_xywy_kg_json, "kg"),
    "qasystem_kg_csv": (load_qasystem_kg_csv, "kg"),
    "kg_instruct_jsonl": (load_kg_instruct_jsonl, "sft"),
    "medicalgpt_pretrain_txt": (load_medicalgpt_pretrain_txt, "cpt"),
    "medicalgpt_sft_jsonl": (load_medicalgpt_sft_jsonl, "sft"),
    "medicalgpt_reward_jsonl": (load_medicalgpt_reward_jsonl, "dpo"),
    "medicalgpt_rag_jsonl": (load_medicalgpt_rag_jsonl, "qa"),
    "cmtmedqa_json": (load_cmtmedqa_json, "sft"),
    "cmedqa2_json": (load_cmedqa2_json, "qa"),
    "zhongjing_ranking": (load_zhongjing_ranking, "dpo"),
    "toyhom_csv": (load_toyhom_csv, "sft"),
    "chimed_cpt_txt": (load_chimed_cpt_txt, "cpt"),
    "chimed_sft_jsonl": (load_chimed_sft_jsonl, "sft"),
    "chimed_dpo_json": (load_chimed_dpo_json, "dpo"),
}
LOADERS: dict[str, Callable] = {name: fn for name, (fn, _) in _REGISTRY.items()}
LOADER_KINDS: dict[str, str] = {name: kind for name, (_, kind) in _REGISTRY.items()}
# Loaders that can hand out their records one at a time (same arguments, a RecordStream back): the
# formats of the multi-GB released corpora. The others parse their file whole (a CSV, a JSON document,
# a KG crawl), so `open_source` loads them and streams the list.
STREAMS: dict[str, Callable[..., RecordStream]] = {
    "chimed_cpt_txt": stream_chimed_cpt_txt,
    "chimed_sft_jsonl": stream_chimed_sft_jsonl,
    "chimed_dpo_json": stream_chimed_dpo_json,
}


def load_source(loader_name: str, path, **kw):
    """`load_source("toyhom_csv", "…/内科_sample3000.csv", errors="skip")`; unknown names are errors."""
    try:
        loader = LOADERS[loader_name]
    except KeyError:
        raise ValueError(f"unknown loader {loader_name!r}; known: {', '.join(sorted(LOADERS))}") from None
    return loader(path, **kw)


def open_source(loader_name: str, path, **kw) -> RecordStream:
    """The records of a source as a RecordStream (the data stage's way in): read record by record where
    the loader can (STREAMS), else loaded whole and handed out one by one."""
    if loader_name in STREAMS:
        return STREAMS[loader_name](path, **kw)
    return RecordStream.of(load_source(loader_name, path, **kw))


__all__ = ["LOADERS", "LOADER_KINDS", "STREAMS", "RecordStream", "load_source", "open_source", "kg_entity",
           "KG_LIST_FIELDS", "parse_options",
           "load_ceval_subject", "load_pubmedqa_rows", "load_pubmedqa_hub", "load_qasystem_dicts",
           "load_zhongjing_ranking_input", "iter_chimed_cpt_txt", "iter_chimed_sft_jsonl",
           *(fn.__name__ for fn in STREAMS.values()),
           *(fn.__name__ for fn in LOADERS.values())]
