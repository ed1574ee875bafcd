"""The DCPT corpus (KG passages, encyclopedia paragraphs, QA texts, dialogues) and the exposure counter.

Exposures are counted by searching the generated texts rather than trusting the generator's intent, so
the reported number is what the model actually reads (also after deduplication, see count_exposures).
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter

from ...config import TinyDataConfig
from .. import kg
from ..records import cpt
from .kb import _KB
from .sampling import _chunks, _fill, _join, _largest_remainder, _unique
from .templates import (ANSWERS, DIALOGUE_ROLES, ENCYC, ENCYC_OPEN, FIELDS, PATIENT_FIRST, PATIENT_FOLLOW,
                        PRONOUNS, QA_FORMATS, QUESTIONS, SOURCE)


def _cpt_corpora(kb: _KB, taught: list[str], cfg: TinyDataConfig, rng: random.Random) -> dict[str, list]:
    out = {"cpt_kg": [], "cpt_text": [], "cpt_qa": [], "cpt_dialogue": []}
    mix = _largest_remainder(cfg.restatements_per_fact, {k: float(v) for k, v in cfg.cpt_mix.items()})
    unknown = set(mix) - {"kg", "text", "qa", "dialogue"}
    if unknown:
        raise ValueError(f"unknown cpt_mix kinds {sorted(unknown)}; use kg, text, qa, dialogue")
    seen: set = set()

    def encyclopedia(e: dict, order: list[str]) -> str:
        parts = [rng.choice(ENCYC_OPEN).format(n=e["name"])]
        for f in order:
            n = e["name"] if rng.random() < 0.5 else rng.choice(PRONOUNS)
            parts.append(_fill(rng.choice(ENCYC[f]), n, _join(e[f], rng)))
        return "".join(parts)

    def qa_text(e: dict, group: list[str]) -> str:
        q_tag, a_tag = rng.choice(QA_FORMATS)
        return "\n".join(f"{q_tag}{_fill(rng.choice(QUESTIONS[f]), e['name'])}\n"
                         f"{a_tag}{_fill(rng.choice(ANSWERS[f]), e['name'], _join(e[f], rng))}" for f in group)

    def dialogue(e: dict, group: list[str]) -> str:
        p_tag, d_tag = rng.choice(DIALOGUE_ROLES)
        turns = []
        for i, f in enumerate(group):
            ask = _fill(rng.choice(PATIENT_FIRST[f]), e["name"]) if i == 0 else rng.choice(PATIENT_FOLLOW[f])
            turns += [f"{p_tag}：{ask}", f"{d_tag}：{_fill(rng.choice(ANSWERS[f]), e['name'], _join(e[f], rng))}"]
        return "\n".join(turns)

    for name in taught:
        e = kb.by_name[name]
        fields = [f for f in FIELDS if e[f]]
        rounds = [kind for kind, k in mix.items() for _ in range(k)]
        rng.shuffle(rounds)
        for kind in rounds:  # one round states every fact of the disease exactly once
            order = list(fields)
            rng.shuffle(order)
            if kind == "kg":
                text = _unique(lambda: kg.entity_to_passage(e, rng, style=None), seen)
                out["cpt_kg"].append(cpt(text, f"{SOURCE}/cpt_kg"))
            elif kind == "text":
                out["cpt_text"].append(cpt(_unique(lambda: encyclopedia(e, order), seen), f"{SOURCE}/cpt_text"))
            elif kind == "qa":
                for group in _chunks(order, rng, (1, 2, 3)):
                    out["cpt_qa"].append(cpt(_unique(lambda: qa_text(e, group), seen), f"{SOURCE}/cpt_qa"))
            else:
                for group in _chunks(order, rng, (2, 3)):
                    out["cpt_dialogue"].append(cpt(_unique(lambda: dialogue(e, group), seen),
                                                   f"{SOURCE}/cpt_dialogue"))
    for records in out.values():
        rng.shuffle(records)
    return out


def _exposures(cpt_records: list[dict], kb: _KB, taught: list[str]) -> dict:
    """Exposures per fact per epoch, by searching the texts: for every record, the diseases it names, and
    for each of them how often each of its values occurs in the record."""
    pattern = re.compile("|".join(re.escape(n) for n in sorted(kb.by_name, key=len, reverse=True)))
    counts = Counter()
    for r in cpt_records:
        text = r["text"]
        for name in set(pattern.findall(text)):
            e = kb.by_name[name]
            for f in FIELDS:
                for v in e[f]:
                    counts[(name, f, v)] += text.count(v)
    per_fact = [counts[(name, f, v)] for name in taught for f in FIELDS for v in kb.by_name[name][f]]
    untaught = sum(c for (name, _, _), c in counts.items() if name not in set(taught))
    return {"min": min(per_fact) if per_fact else 0, "max": max(per_fact) if per_fact else 0,
            "mean": round(statistics.fmean(per_fact), 2) if per_fact else 0.0, "n_facts": len(per_fact),
            "untaught_disease_mentions": untaught}


def count_exposures(cpt_records: list[dict], taught: list[str], kb_path: str | None = None) -> dict:
    """Exposures per fact in a (possibly deduplicated) CPT corpus: what the DCPT model actually sees."""
    return _exposures(cpt_records, _KB(kg.kb_entities(kb_path)), taught)
