"""ZhongJing (SupritYoung/Zhongjing) dialogue test set and ranking-annotation data -> SFT / DPO records.

- CMtMedQA_test (`data/CMtMedQA_test.json`, JSON array): records 0-999 are multi-turn, LLaMA-Factory
  "history" style `{"id", "cate1", "cate2", "instruction", "input", "output", "history": [[patient,
  doctor], ...]}` (history = the turns BEFORE the final instruction -> output turn); records 1000-1143 are
  safety probes `{"instruct", "output"}` whose key is `instruct` and whose values start with a space.
  Both become one SFT conversation (values are stripped by records.sft).
- Ranking annotation (SupritYoung/RLHF-Label-Tool): `input_file.json` is an object keyed "0".."9" of
  `{"query", "history", "response_0".."response_3"}`; `output_result.tsv` (header
  `id query history rank1 rank2 rank3 rank4`, rank1 best) holds the human rankings. Each ranked row gives
  DPO pairs (rank_i chosen, rank_j rejected) for every i < j. Two candidates can be the SAME text (query 0
  has response_0 == response_3): such a pair states no preference and is skipped and counted, even under
  errors="raise", because the source itself made it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from .. import records
from ..io import read_json
from ._common import (DataFormatError, ErrorPolicy, RecordGuard, check_row_width, csv_rows, json_records,
                      parse_json_value, render_history, resolve_path, take)
from .kg_instruct import alpaca_user

IDENTICAL_PAIR = "identical chosen and rejected (no preference)"


def _cmtmedqa(obj: dict) -> dict:
    key = "instruction" if "instruction" in obj else "instruct"  # safety records use `instruct`
    turns = [(turn[0], turn[1]) for turn in obj.get("history") or []]
    turns.append((alpaca_user(obj, key), obj["output"]))
    return records.conversation_from_pairs(turns, "cmtmedqa")


def load_cmtmedqa_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    path = resolve_path(path)
    guard, out = RecordGuard(path, "cmtmedqa", errors), []
    for ref, value in json_records(path):
        if take(out, max_records):
            break
        with guard.record(ref):
            out.append(_cmtmedqa(parse_json_value(value)))
    return guard.finish(out)


def _in_dir(path: Path, name: str) -> Path:
    return path / name if path.is_dir() else path


def _history(cell) -> list:
    """The TSV's history cell is a JSON (or Python-repr) list of [user, assistant] pairs."""
    if isinstance(cell, list):
        return cell
    text = (cell or "").strip() or "[]"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"history {text[:40]!r} is neither JSON nor a Python list") from exc


def ranking_prompt(query: str, history) -> str:
    """The query, after its earlier turns rendered as 用户/助手 lines when there are any."""
    earlier = render_history(_history(history))
    return f"{earlier}\n用户：{query.strip()}" if earlier else query


def load_zhongjing_ranking(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    """`output_result.tsv` (or its directory) -> DPO triplets, best-to-worst pairs in rank order."""
    path = _in_dir(resolve_path(path), "output_result.tsv")
    guard, out = RecordGuard(path, "zhongjing_ranking", errors), []
    for ref, row in csv_rows(path, delimiter="\t", required=("query", "rank1", "rank2")):
        with guard.record(ref):
            check_row_width(row)
            ranks = sorted((k for k in row if k and k.startswith("rank")), key=lambda k: int(k[4:]))
            texts = [row[k].strip() for k in ranks if (row[k] or "").strip()]
            prompt = ranking_prompt(row["query"], row.get("history"))
            for i, chosen in enumerate(texts):
                for rejected in texts[i + 1:]:
                    if take(out, max_records):
                        break
                    if chosen == rejected:
                        guard.skip(IDENTICAL_PAIR)
                        continue
                    out.append(records.dpo(prompt, chosen, rejected, "zhongjing_ranking"))
    return guard.finish(out)


def load_zhongjing_ranking_input(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    """`input_file.json` (or its directory) -> {"id", "query", "history", "responses", "source"}."""
    path = _in_dir(resolve_path(path), "input_file.json")
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DataFormatError(path, None, f"expected an object keyed '0'.., got {type(doc).__name__}")
    guard, out = RecordGuard(path, "zhongjing_ranking", errors), []
    for key, obj in doc.items():
        if take(out, max_records):
            break
        with guard.record(f"key {key!r}"):
            names = sorted((k for k in obj if k.startswith("response_")), key=lambda k: int(k[9:]))
            if not names:
                raise ValueError("no response_N fields")
            query = obj["query"].strip()
            if not query:
                raise ValueError("query is empty")
            out.append({"id": str(key), "query": query, "history": _history(obj.get("history")),
                        "responses": [str(obj[n]).strip() for n in names], "source": "zhongjing_ranking"})
    return guard.finish(out)
