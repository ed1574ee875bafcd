"""ChiMed, Qilin-Med's released data (HF dataset `williamliu/ChiMed`: cpt.txt, sft.jsonl, dpo.json).

No sample of these files was obtainable, so the loaders are DEFENSIVE, accepting every shape that the
authors' own scripts (adapted from MedicalGPT) read or write:
- cpt.txt (4.85 GB): plain text, one document per non-empty line. STREAMED line by line from the raw
  bytes (each line decoded on its own, so one bad line is one bad record); never read whole.
- sft.jsonl: JSON lines, streamed; a record is ShareGPT `conversations` [{"from", "value"}] (what their
  SFT script reads), chat `messages` [{"role", "content"}], or Alpaca instruction/input/output (with
  optional `history` pairs and `system`). A file that is one JSON array is accepted (not streamed).
- dpo.json: JSON array, JSON lines, or concatenated pretty-printed objects (their create_dpo_data.py
  appends `json.dumps(indent=4)` objects); prompt = prompt|question|instruction (+ input), chosen =
  chosen|response_chosen|response_accepted, rejected = rejected|response_rejected.
Paths go through io.resolve_path, so `hf://datasets/williamliu/ChiMed/cpt.txt` downloads from the hub.
"""

from __future__ import annotations

from typing import Iterator

from .. import records
from ..io import iter_lines
from ._common import (ErrorPolicy, RecordGuard, RecordStream, UndecodableLine, json_lines, json_records,
                      parse_json_value, render_history, resolve_path)
from .kg_instruct import alpaca_user
from .medicalgpt import SHAREGPT_ROLES, sharegpt_messages

def _cpt_records(path, guard: RecordGuard, encoding: str, max_records: int = 0) -> Iterator[dict]:
    count = 0
    for lineno, text in iter_lines(path, encoding):
        record = None
        with guard.record(f"line {lineno}"):
            if isinstance(text, UndecodableLine):
                raise text
            record = records.cpt(text, "chimed_cpt")
        if record is not None:  # yield outside the guard: the consumer's errors are not ours
            yield record
            count += 1
            if max_records and count >= max_records:
                return  # before reading on: lines past the limit are neither loaded nor counted as skipped


def iter_chimed_cpt_txt(path, *, errors: ErrorPolicy = "raise", encoding: str = "utf-8") -> Iterator[dict]:
    """Stream CPT records; memory stays flat whatever the file size."""
    return iter(stream_chimed_cpt_txt(path, errors=errors, encoding=encoding))


def stream_chimed_cpt_txt(path, *, errors: ErrorPolicy = "raise", max_records: int = 0,
                          encoding: str = "utf-8") -> RecordStream:
    path = resolve_path(path)
    guard = RecordGuard(path, "chimed_cpt", errors)
    return RecordStream(_cpt_records(path, guard, encoding, max_records), guard.stats)


def load_chimed_cpt_txt(path, *, errors: ErrorPolicy = "raise", max_records: int = 0,
                        encoding: str = "utf-8"):
    return stream_chimed_cpt_txt(path, errors=errors, max_records=max_records, encoding=encoding).to_records()


def sft_messages(obj: dict) -> list[dict]:
    """Any of the three SFT shapes -> {"role", "content"} messages (system prompt first if any)."""
    system = [{"role": "system", "content": obj["system"]}] if str(obj.get("system") or "").strip() else []
    if "conversations" in obj:
        return system + sharegpt_messages(obj["conversations"])
    if "messages" in obj:
        return system + [{"role": SHAREGPT_ROLES.get(str(m.get("role", "")).lower(), m.get("role")),
                          "content": m["content"]} for m in obj["messages"]]
    messages = list(system)
    for user, assistant in obj.get("history") or []:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages + [{"role": "user", "content": alpaca_user(obj)},
                       {"role": "assistant", "content": obj["output"]}]


def _sft_values(path):
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return json_records(path) if head.startswith(b"[") else json_lines(path)


def iter_chimed_sft_jsonl(path, *, errors: ErrorPolicy = "raise", max_records: int = 0) -> Iterator[dict]:
    return iter(stream_chimed_sft_jsonl(path, errors=errors, max_records=max_records))


def _guarded_records(values: Iterator, guard: RecordGuard, max_records: int, build) -> Iterator[dict]:
    """build(parsed JSON value) per (ref, value), each under the guard (raise, or skip and count), at most
    max_records (0 = all) records kept."""
    count = 0
    for ref, value in values:
        if max_records and count >= max_records:
            return
        record = None
        with guard.record(ref):
            record = build(parse_json_value(value))
        if record is not None:
            count += 1
            yield record


def _sft_records(path, guard: RecordGuard, max_records: int) -> Iterator[dict]:
    return _guarded_records(_sft_values(path), guard, max_records,
                            lambda obj: records.sft(sft_messages(obj), "chimed_sft"))


def stream_chimed_sft_jsonl(path, *, errors: ErrorPolicy = "raise", max_records: int = 0) -> RecordStream:
    """JSON lines are read line by line (a file that is one JSON array is parsed whole first)."""
    path = resolve_path(path)
    guard = RecordGuard(path, "chimed_sft", errors)
    return RecordStream(_sft_records(path, guard, max_records), guard.stats)


def load_chimed_sft_jsonl(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    return stream_chimed_sft_jsonl(path, errors=errors, max_records=max_records).to_records()


def _first(obj: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in obj:
            return obj[key]
    raise KeyError("|".join(keys))


def _response_text(value) -> str:
    """A response given as text, as a message, or as a message list (last assistant turn)."""
    if isinstance(value, list):
        value = [m for m in value if isinstance(m, dict) and m.get("role") == "assistant"][-1]
    if isinstance(value, dict):
        value = value["content"]
    return value


def dpo_triplet(obj: dict, source: str = "chimed_dpo") -> dict:
    key = next((k for k in ("prompt", "question", "instruction") if k in obj), None)
    if key is None:
        raise KeyError("prompt|question|instruction")
    prompt = alpaca_user(obj, key)
    earlier = render_history(obj.get("history"))
    if earlier:
        prompt = f"{earlier}\n用户：{prompt}"
    chosen = _response_text(_first(obj, ("chosen", "response_chosen", "response_accepted")))
    rejected = _response_text(_first(obj, ("rejected", "response_rejected")))
    return records.dpo(prompt, chosen, rejected, source)


def _dpo_records(path, guard: RecordGuard, max_records: int) -> Iterator[dict]:
    # parsed whole: the released dpo.json is 18.6 MB
    return _guarded_records(json_records(path), guard, max_records, dpo_triplet)


def stream_chimed_dpo_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0) -> RecordStream:
    path = resolve_path(path)
    guard = RecordGuard(path, "chimed_dpo", errors)
    return RecordStream(_dpo_records(path, guard, max_records), guard.stats)


def load_chimed_dpo_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    return stream_chimed_dpo_json(path, errors=errors, max_records=max_records).to_records()
