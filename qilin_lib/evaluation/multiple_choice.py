"""The three scoring modes for multiple-choice items (DESIGN.md section 4), each returning one prediction
row per item: `{"id", "answer", "pred", ...}` with `pred` a sorted letter string ("" = no answer).

- `generate` (the papers' protocol): greedy generation after the benchmark prompt, letters extracted by
  named parsers (qilin_lib.evaluation.extraction); every parser's reading is kept in the row, the first
  one is `pred`.
- `loglik`: one forward pass scores the next token after the prompt for every option letter; the most
  likely letter wins. A single letter by construction, so multi-answer items (some of CMExam) are always
  wrong in this mode.
- `cloze`: each option's *text* scored as the continuation of the question alone (no option list), as
  lm-evaluation-harness scores multiple choice. Four readings of the same log-probabilities:
    cloze_sum         summed log-prob (lm-eval `acc`);
    cloze_token       per token;
    cloze_char        per character (lm-eval `acc_norm` normalises by length in bytes/characters);
    cloze_calibrated  log P(option | question) - log P(option | neutral question), the domain-conditional
                      PMI of Holtzman et al. 2021: removes how likely an option is whatever the question.
  The neutral question is the answer slot alone (`答案：`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .scoring import Scorer

CLOZE_VARIANTS = ("cloze_sum", "cloze_token", "cloze_char", "cloze_calibrated")
ANSWER_SLOT = "答案："


def generate(scorer: Scorer, items: Sequence[dict], prompt: Callable[[dict], str],
             parsers: dict[str, Callable[[str, dict], str]], max_new_tokens: int = 16, with_loglik: bool = False):
    """Greedy answers to `prompt(item)`; `pred` is the first parser's reading, `preds` all of them.

    with_loglik: also return `loglik`'s rows, read from the first decoding step of the same pass (one
    forward pass less; the prompt is then the one generation sees, cut to leave room for the answer)."""
    letters = _letters(items)
    contexts = [scorer.context(prompt(it)) for it in items]
    if with_loglik:
        outputs, lp = scorer.generate(contexts, max_new_tokens, desc="generate", first_token_candidates=letters)
    else:
        outputs = scorer.generate(contexts, max_new_tokens, desc="generate")
    rows = []
    for it, out in zip(items, outputs):
        preds = {name: parse(out, it["options"]) for name, parse in parsers.items()}
        rows.append({"id": it["id"], "answer": it["answer"], "output": out, "preds": preds,
                     "pred": preds[next(iter(parsers))]})
    return (rows, _loglik_rows(items, letters, lp)) if with_loglik else rows


def loglik(scorer: Scorer, items: Sequence[dict], prompt: Callable[[dict], str]) -> list[dict]:
    """Next-token log-probability of each option letter after `prompt(item)`; argmax wins."""
    letters = _letters(items)
    lp = scorer.next_token_logprobs([scorer.context(prompt(it)) for it in items], letters, desc="loglik")
    return _loglik_rows(items, letters, lp)


def _letters(items: Sequence[dict]) -> list[str]:
    return sorted({letter for it in items for letter in it["options"]})


def _loglik_rows(items: Sequence[dict], letters: list[str], lp) -> list[dict]:
    rows = []
    for i, it in enumerate(items):
        scores = {letter: round(float(lp[i, letters.index(letter)]), 4) for letter in it["options"]}
        rows.append({"id": it["id"], "answer": it["answer"], "scores": scores, "pred": max(scores, key=scores.get)})
    return rows


def cloze(scorer: Scorer, items: Sequence[dict], question: Callable[[dict], str] = lambda it: it["question"],
          neutral: str = "") -> dict[str, list[dict]]:
    """{variant: rows} for the four cloze readings (module docstring). `question(item)` is the context
    (the tiny profile's prior-only baseline passes the question with the disease name removed)."""
    neutral_context = scorer.context(f"{neutral}\n{ANSWER_SLOT}" if neutral else ANSWER_SLOT)
    pairs, neutral_pairs, index = [], [], []
    for i, it in enumerate(items):
        context = scorer.context(f"{question(it)}\n{ANSWER_SLOT}")
        for letter, text in it["options"].items():
            pairs.append((context, text))
            neutral_pairs.append((neutral_context, text))
            index.append((i, letter))
    scored = scorer.continuation_logprobs(pairs, desc="cloze")
    unconditional = scorer.continuation_logprobs(neutral_pairs, desc="cloze (neutral)")
    scores: dict[str, list[dict]] = {v: [{} for _ in items] for v in CLOZE_VARIANTS}
    for (i, letter), (lp, n), (lp0, _) in zip(index, scored, unconditional):
        chars = max(len(items[i]["options"][letter]), 1)
        scores["cloze_sum"][i][letter] = lp
        scores["cloze_token"][i][letter] = lp / max(n, 1)
        scores["cloze_char"][i][letter] = lp / chars
        scores["cloze_calibrated"][i][letter] = lp - lp0
    return {variant: [{"id": it["id"], "answer": it["answer"],
                       "scores": {k: round(v, 4) for k, v in per_item[i].items()},
                       "pred": max(per_item[i], key=per_item[i].get)} for i, it in enumerate(items)]
            for variant, per_item in scores.items()}
