"""Log-probabilities of texts and answers under a model, shared by training (which logs them before and
after each stage) and evaluation (the tiny profile's held-out measurements), which never imports training:

- `perplexity`, `probe_perplexity`: the DCPT sanity check on the data stage's held-out probe statements;
- `ensure_chat_template` and the chat-template token runs (`_turns`, the source/target cuts) that the SFT
  mask and the DPO pairs are built from, so one rule decides what a prompt and an answer are;
- `tokenize_dpo_dataset`, `preference_metrics`: a model's preference for the chosen answer of a pair
  (log-prob accuracy / margin, DPO implicit rewards against a reference).

The tokenisation here decides what SFT, task adaptation and DPO train on, so this module is part of those
stages' artifact keys (train/common.py STAGE_CODE)."""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch

from .chat_templates import encode_by_segment, stop_token_ids
from .data import packing
from .modeling import CHAT_TEMPLATE

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


# ----------------------------------------------------------------------- perplexity (DCPT check)
@torch.no_grad()
def perplexity(model, tokenizer, texts, spans=None, batch_size: int = 32) -> float:
    """exp(mean per-token NLL) over the tokens of `texts`, or only over those inside `spans` (one
    (start, end) character range per text). Each text is scored after an EOS, the context every
    document has in the packed DCPT blocks, so its first token is predicted too."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=spans is not None)
    rows, masks = [], []
    for i, ids in enumerate(enc["input_ids"]):
        rows.append([tokenizer.eos_token_id] + ids)
        if spans is None:
            masks.append([True] * len(ids))
        else:
            lo, hi = spans[i]
            masks.append([lo <= a and b <= hi for a, b in enc["offset_mapping"][i]])
    collate = packing.PaddedCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    nll, count = 0.0, 0
    for i in range(0, len(rows), batch_size):
        batch = collate([{"input_ids": r} for r in rows[i: i + batch_size]])
        labels = batch["labels"][:, 1:].clone()
        for j, mask in enumerate(masks[i: i + batch_size]):
            labels[j, : len(mask)][~torch.tensor(mask, dtype=torch.bool)] = -100
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits.float()
        nll += float(torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels.to(device),
                                                       ignore_index=-100, reduction="sum"))
        count += int((labels != -100).sum())
    model.train(was_training)
    return math.exp(nll / count) if count else float("nan")


def _fact_span(text: str, values: list[str]) -> tuple[int, int]:
    """Characters from the first to the end of the last of the disease's field values in `text`."""
    found = [(text.find(v), text.find(v) + len(v)) for v in values if v and v in text]
    return (min(a for a, _ in found), max(b for _, b in found)) if found else (0, 0)


def probe_perplexity(data_dir: str | Path, model, tokenizer) -> dict | None:
    """Perplexity of the data stage's held-out probe statements (tiny profile) per group, "taught" vs
    "control": over the whole statement ("text") and over the stated facts only ("facts": the span of
    the field's values, which follow the disease name in a wording no training text uses).

    The whole-statement number is dominated by the unseen template wording (about a fifth of its tokens
    never occur in the training corpus, and training drives their probability down): it rises during
    DCPT for both groups, and the gap between the groups is what carries the knowledge. The facts-only
    number isolates it. Returns None when the data stage wrote no probe set (non-tiny profiles)."""
    from datasets import load_from_disk

    from .data import kg

    path = Path(data_dir) / "eval" / "probe_texts"
    if not path.exists():
        return None
    probes = load_from_disk(str(path))
    entities = {e["name"]: e for e in kg.kb_entities()}
    out: dict = {"text": {}, "facts": {}}
    for group in sorted(set(probes["group"])):
        rows = [r for r in probes if r["group"] == group]
        texts = [r["text"] for r in rows]
        spans = [_fact_span(r["text"], entities.get(r["disease"], {}).get(r["field"], [])) for r in rows]
        out["text"][group] = round(perplexity(model, tokenizer, texts), 2)
        out["facts"][group] = round(perplexity(model, tokenizer, texts, spans=spans), 2)
    return out


# ---------------------------------------------------------------- chat turns (SFT mask, DPO pairs)
def _generation_header(tokenizer, **template_kwargs) -> list[int]:
    """The tokens the chat template puts between a user turn and the assistant's answer."""
    probe = [{"role": "user", "content": "x"}]
    bare = tokenizer.apply_chat_template(probe, tokenize=True, return_dict=True, **template_kwargs)["input_ids"]
    with_header = tokenizer.apply_chat_template(probe, tokenize=True, return_dict=True, add_generation_prompt=True,
                                                **template_kwargs)["input_ids"]
    return list(with_header[len(bare):]) if with_header[:len(bare)] == bare else []


def _turns(tokenizer, messages: Sequence[dict], by_segment: bool = False,
           **template_kwargs) -> list[tuple[list[int], list[int]]]:
    """(source, target) token runs of a rendered conversation, from the template's assistant mask; with
    `by_segment`, every source and target text is encoded on its own (the authors' rule).

    Tokens after the last assistant message (a trailing newline, an unanswered user turn) carry no loss
    and are dropped."""
    if by_segment:
        ids, mask = encode_by_segment(tokenizer, messages, **template_kwargs)
    else:
        out = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, **template_kwargs)
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    if not any(mask):
        if any(m["role"] == "assistant" for m in messages):
            raise ValueError("the chat template marks no assistant tokens: it needs {% generation %} blocks")
        return []
    turns, i = [], 0
    while i < len(ids):
        j = i
        while j < len(ids) and not mask[j]:
            j += 1
        k = j
        while k < len(ids) and mask[k]:
            k += 1
        if k == j:  # trailing source without an answer
            break
        turns.append((ids[i:j], ids[j:k]))
        i = k
    return turns


def _cut_source(ids: list[int], limit: int, header: list[int]) -> list[int]:
    if len(ids) <= limit:
        return ids
    if header and len(header) < limit and ids[-len(header):] == header:
        return ids[:limit - len(header)] + header  # the answer still opens the way it does at inference
    return ids[:limit]


def _cut_target(ids: list[int], limit: int, ends=()) -> list[int]:
    """The first tokens of a too long target and its end: from its last token in `ends` (the end-of-turn
    token, and what the template puts after it inside the mask), else its last token."""
    if len(ids) <= limit:
        return ids
    tail = next((len(ids) - k for k in range(len(ids) - 1, -1, -1) if ids[k] in ends), 1)
    tail = min(tail, limit)
    return ids[:limit - tail] + ids[-tail:]


def ensure_chat_template(tokenizer):
    """Base models without a chat template (Baichuan-7B) get the repo's generic one: the SFT mask, the DPO
    prompts and evaluation then share one format, saved with every trained tokenizer."""
    if getattr(tokenizer, "chat_template", None) is None:
        log.warning("tokenizer has no chat template; using the repo's generic <|user|>/<|assistant|> template")
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


# ------------------------------------------------------------------------------ preference pairs
def _prompt_messages(prompt) -> list[dict]:
    return list(prompt) if isinstance(prompt, (list, tuple)) else [{"role": "user", "content": prompt}]


def _split(tokenizer, prompt, answer: str, by_segment: bool, **template_kwargs) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) of a conversation ending in `answer`; earlier turns belong to the prompt."""
    turns = _turns(tokenizer, _prompt_messages(prompt) + [{"role": "assistant", "content": answer}], by_segment,
                   **template_kwargs)
    if not turns:
        raise ValueError("preference pair renders without an assistant turn")
    before = [t for source, target in turns[:-1] for t in source + target]
    return before + turns[-1][0], turns[-1][1]


def tokenize_preference(tokenizer, prompt, chosen: str, rejected: str, max_source_length: int,
                        max_target_length: int, *, by_segment: bool = False,
                        template_kwargs: dict | None = None) -> dict[str, list[int]]:
    """prompt_ids / chosen_ids / rejected_ids of one pair, with the SFT chat template and length rule."""
    kw = template_kwargs or {}
    header = _generation_header(tokenizer, **kw)
    ends = set(stop_token_ids(tokenizer, **kw))
    prompt_c, chosen_ids = _split(tokenizer, prompt, chosen, by_segment, **kw)
    prompt_r, rejected_ids = _split(tokenizer, prompt, rejected, by_segment, **kw)
    if prompt_c != prompt_r:
        raise ValueError("the rendered prompt depends on the answer; the chat template cannot be split")
    return {"prompt_ids": _cut_source(prompt_c, max_source_length, header),
            "chosen_ids": _cut_target(chosen_ids, max_target_length, ends),
            "rejected_ids": _cut_target(rejected_ids, max_target_length, ends)}


def tokenize_dpo_dataset(tokenizer, dataset, max_source_length: int, max_target_length: int, *,
                         by_segment: bool = False, template_kwargs: dict | None = None):
    """ChiMed-DPO records ({"prompt", "chosen", "rejected", ...}) -> token-id columns for the trainer."""
    def fn(rec):
        return tokenize_preference(tokenizer, rec["prompt"], rec["chosen"], rec["rejected"], max_source_length,
                                   max_target_length, by_segment=by_segment, template_kwargs=template_kwargs)

    return dataset.map(fn, remove_columns=dataset.column_names, desc="tokenize DPO")


@torch.no_grad()
def _sequence_logps(model, pad_token_id: int, rows: Sequence[dict], batch_size: int):
    """Summed log-probs and lengths of the chosen and rejected answers given their prompts."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    collate = DataCollatorForPreference(pad_token_id=pad_token_id)
    device = next(model.parameters()).device
    out = {"chosen": [], "rejected": [], "chosen_len": [], "rejected_len": []}
    for i in range(0, len(rows), batch_size):
        batch = collate([{k: r[k] for k in PAIR_COLUMNS} for r in rows[i:i + batch_size]])
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        answer = batch["completion_mask"][:, 1:].to(device).float()
        sums, lens = (logp * answer).sum(1).cpu(), answer.sum(1).cpu()
        for key, part in (("chosen", 0), ("rejected", 1)):
            out[key].append(sums.chunk(2)[part])
            out[f"{key}_len"].append(lens.chunk(2)[part])
    return {k: torch.cat(v) for k, v in out.items()}


def preference_metrics(model, tokenizer, rows, beta: float, batch_size: int = 32, *,
                       policy_is_reference: bool = False) -> dict:
    """Policy preference and DPO implicit rewards on tokenised pairs (see the module docstring).

    policy_is_reference: skip the reference pass (before training: a fresh LoRA adapter has B = 0, so the
    policy is exactly the model with the adapter disabled)."""
    rows = [dict(r) for r in rows]
    was_training = model.training
    model.eval()
    pol = _sequence_logps(model, tokenizer.pad_token_id, rows, batch_size)
    if policy_is_reference:
        ref = pol
    elif hasattr(model, "disable_adapter"):  # PeftModel: the reference is the model with the adapter off
        with model.disable_adapter():
            ref = _sequence_logps(model, tokenizer.pad_token_id, rows, batch_size)
    else:
        ref = pol
    model.train(was_training)
    r_c = beta * (pol["chosen"] - ref["chosen"])
    r_r = beta * (pol["rejected"] - ref["rejected"])
    per_tok_c, per_tok_r = pol["chosen"] / pol["chosen_len"], pol["rejected"] / pol["rejected_len"]

    def mean(x):
        return round(float(x.float().mean()), 4)

    return {"pairs": len(rows),
            "logp_accuracy": mean(pol["chosen"] > pol["rejected"]),
            "logp_margin": mean(pol["chosen"] - pol["rejected"]),
            "logp_per_token_accuracy": mean(per_tok_c > per_tok_r),
            "logp_per_token_margin": mean(per_tok_c - per_tok_r),
            "reward_accuracy": mean(r_c > r_r), "reward_margin": mean(r_c - r_r),
            "reward_chosen": mean(r_c), "reward_rejected": mean(r_r)}
