"""BenTsao / Huatuo-Llama-Med-Chinese KG-derived instructions (`data/llama_data.json`) -> SFT records.

Format: JSON LINES despite the `.json` extension (8,658 lines), Alpaca fields instruction/input/output,
built from CMeKG entries with the ChatGPT API (model-generated; academic use only). `input` is empty in
every record, but a non-empty one is appended to the user turn on its own line, as Alpaca templates do.
"""

from __future__ import annotations

from .. import records
from ._common import ErrorPolicy, RecordGuard, json_records, parse_json_value, resolve_path, take

SOURCE = "bentsao_kg_instruct"


def alpaca_user(obj: dict, instruction_key: str = "instruction") -> str:
    """Alpaca instruction + ("\\n" + input if input): the user turn of an SFT conversation."""
    instruction = str(obj[instruction_key]).strip()
    extra = str(obj.get("input") or "").strip()
    return f"{instruction}\n{extra}" if extra else instruction


def load_kg_instruct_jsonl(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    path = resolve_path(path)
    guard, out = RecordGuard(path, SOURCE, errors), []
    for ref, value in json_records(path):
        if take(out, max_records):
            break
        with guard.record(ref):
            obj = parse_json_value(value)
            out.append(records.conversation_from_pairs([(alpaca_user(obj), obj["output"])], SOURCE))
    return guard.finish(out)
