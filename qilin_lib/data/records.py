"""The uniform record formats (DESIGN.md section 2) and their validating constructors.

Every loader and generator builds records through these functions, so a malformed record fails where it
is made, with a message that `RecordGuard` turns into "file: record N: ...".

- CPT text:           {"text", "source"}
- SFT conversation:   {"messages": [{"role", "content"}, ...], "source"}
- DPO triplet:        {"prompt", "chosen", "rejected", "source"}
- MCQ item:           {"id", "question", "options": {"A": ...}, "answer": "A" | "AC", "explanation",
                       "subject", "source"}
- QA pair:            {"id", "question", "answer", "source"}
"""

from __future__ import annotations

import string

ROLES = ("system", "user", "assistant")
LETTERS = string.ascii_uppercase


def _text(value: object, name: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value and not allow_empty:
        raise ValueError(f"{name} is empty")
    return value


def cpt(text: str, source: str) -> dict:
    return {"text": _text(text, "text"), "source": source}


def sft(messages: list[dict], source: str) -> dict:
    if not messages:
        raise ValueError("messages is empty")
    clean = []
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role not in ROLES:
            raise ValueError(f"message {i}: unknown role {role!r}")
        clean.append({"role": role, "content": _text(msg.get("content"), f"message {i} content")})
    if clean[-1]["role"] != "assistant":
        raise ValueError("last message must be the assistant's")
    if not any(m["role"] == "user" for m in clean):
        raise ValueError("no user message")
    return {"messages": clean, "source": source}


def dpo(prompt: str, chosen: str, rejected: str, source: str) -> dict:
    chosen, rejected = _text(chosen, "chosen"), _text(rejected, "rejected")
    if chosen == rejected:
        raise ValueError("chosen and rejected are identical")
    return {"prompt": _text(prompt, "prompt"), "chosen": chosen, "rejected": rejected, "source": source}


def mcq(id: str, question: str, options: dict[str, str], answer: str, source: str,
        explanation: str = "", subject: str = "") -> dict:
    if len(options) < 2:
        raise ValueError(f"needs at least 2 options, got {len(options)}")
    clean_options = {}
    for letter, text in options.items():
        if len(letter) != 1 or letter not in LETTERS:
            raise ValueError(f"option key {letter!r} is not a capital letter")
        clean_options[letter] = _text(text, f"option {letter}")
    answer = _text(answer, "answer").upper()
    letters = sorted(set(answer))
    if "".join(letters) != "".join(sorted(answer)) or not all(ch in clean_options for ch in letters):
        raise ValueError(f"answer {answer!r} is not a set of option letters {''.join(clean_options)}")
    return {"id": str(id), "question": _text(question, "question"),
            "options": dict(sorted(clean_options.items())), "answer": "".join(letters),
            "explanation": _text(explanation or "", "explanation", allow_empty=True),
            "subject": subject or "", "source": source}


def qa(id: str, question: str, answer: str, source: str) -> dict:
    return {"id": str(id), "question": _text(question, "question"), "answer": _text(answer, "answer"),
            "source": source}


def conversation_from_pairs(turns: list[tuple[str, str]], source: str, system: str | None = None) -> dict:
    """(user, assistant) turns -> an SFT record; the common shape of Alpaca/ShareGPT/history formats."""
    messages = [{"role": "system", "content": system}] if system else []
    for user, assistant in turns:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return sft(messages, source)


# The columns of each ChiMed corpus as the data stage writes them to Arrow: exactly the keys that
# chimed.route's conversions emit (to_cpt, to_sft, records.dpo), in the types `datasets` infers for them.
# A streaming writer needs its schema before the first record; a record may lack a column (it becomes
# None), but a key outside its corpus's columns is an error (qilin_lib.data.stage.CorpusWriter).
_STRING = "string"
CORPUS_COLUMNS: dict[str, dict] = {
    "cpt": {"text": _STRING, "source": _STRING, "subset": _STRING},
    "sft": {"messages": [{"role": _STRING, "content": _STRING}], "source": _STRING, "category": _STRING,
            "turns": _STRING},
    "dpo": {"prompt": _STRING, "chosen": _STRING, "rejected": _STRING, "source": _STRING},
}


def corpus_features(corpus: str):
    """`datasets.Features` of a corpus, columns sorted by name (the order the stage always wrote)."""
    from datasets import Features, List, Value

    def feature(spec):
        if isinstance(spec, list):  # a list of structs (SFT messages), fields in construction order
            return List({name: feature(sub) for name, sub in spec[0].items()})
        return Value(spec)

    columns = CORPUS_COLUMNS[corpus]
    return Features({name: feature(columns[name]) for name in sorted(columns)})
