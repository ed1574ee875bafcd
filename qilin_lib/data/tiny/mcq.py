"""Multiple-choice items: the prompt shape, the balanced-answer item builder, and the evaluation MCQ sets.

SFT exam items and the CMExam / C-Eval evaluation sets share one builder so that the answer format the
model is taught is exactly the one it is tested on.
"""

from __future__ import annotations

import random
from collections import Counter

from ..records import mcq
from .kb import _KB
from .sampling import _balanced_positions, _fill
from .templates import LABEL, LETTERS, PRIOR_NAME, QUESTIONS


def format_mcq_prompt(question: str, options: dict[str, str]) -> str:
    """CMExam prompt shape (DESIGN.md section 4): question, `A xxx` option lines, 答案："""
    lines = [question] + [f"{letter} {text}" for letter, text in options.items()]
    return "\n".join(lines) + "\n答案："


def _explanation(name: str, f: str, values: list[str], letter: str, answer: str) -> str:
    joined = "、".join(values)
    if len(values) == 1:
        return f"{name}的{LABEL[f]}是{joined}，其余选项均不符合，故选{letter}。"
    return f"{name}的{LABEL[f]}包括{joined}。选项中只有{answer}符合，故选{letter}。"


def _mcq_item(kb: _KB, e: dict, f: str, value: str, stem: str, letter_pos: int, n_options: int,
              rng: random.Random) -> tuple[str, dict[str, str], str, str]:
    """(question, options, answer letter, explanation) with the answer at `letter_pos`."""
    distractors = kb.distractors(e, f, n_options - 1, rng)
    rng.shuffle(distractors)
    texts = distractors[:letter_pos] + [value] + distractors[letter_pos:]
    options = {LETTERS[i]: t for i, t in enumerate(texts)}
    letter = LETTERS[letter_pos]
    return _fill(stem, e["name"]), options, letter, _explanation(e["name"], f, e[f], letter, value)


def _value_picker(kb: _KB, rng: random.Random):
    """Rotates through each (disease, field)'s values so repeated items ask different values."""
    used: Counter = Counter()
    offsets: dict = {}

    def pick(name: str, f: str) -> str:
        values = kb.by_name[name][f]
        key = (name, f)
        if key not in offsets:
            offsets[key] = rng.randrange(len(values))
        value = values[(offsets[key] + used[key]) % len(values)]
        used[key] += 1
        return value
    return pick


def _eval_mcq(kb: _KB, pairs: list[tuple[str, str, str]], stems: dict, n_options: int, prefix: str,
              source: str, subject_of, rng: random.Random) -> list[dict]:
    """pairs: (disease, field, group). One item per pair."""
    pick = _value_picker(kb, rng)
    positions = _balanced_positions(len(pairs), n_options, rng)
    items = []
    for i, ((name, f, group), pos) in enumerate(zip(pairs, positions)):
        e = kb.by_name[name]
        stem = rng.choice(stems[f])
        question, options, letter, expl = _mcq_item(kb, e, f, pick(name, f), stem, pos, n_options, rng)
        rec = mcq(f"{prefix}-{i:04d}", question, options, letter, source, explanation=expl,
                  subject=subject_of(f))
        # Two diagnostic variants of the same item: the question with the disease name removed (what the
        # options alone give away) and the question asked in a TRAINING wording (QUESTIONS: what the model
        # recalls when it need not transfer the fact to an unseen wording). Chosen without the rng, so the
        # items themselves do not change.
        recall = QUESTIONS[f][i % len(QUESTIONS[f])]
        rec.update({"question_prior": _fill(stem, PRIOR_NAME), "question_recall": _fill(recall, name),
                    "disease": name, "group": group, "field": f})
        items.append(rec)
    return items
