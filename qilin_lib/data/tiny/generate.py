"""`generate_tiny_corpora`: the one entry point, wiring the KB split to every builder, and its result.

Each corpus draws from its own random stream (seeded by the seed and the corpus name), so changing one
builder or its size does not reshuffle the others.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from ...config import TinyDataConfig
from .. import kg
from ..records import qa
from .cpt_corpus import _cpt_corpora, _exposures
from .kb import _KB, split_diseases
from .mcq import _eval_mcq
from .sampling import _cycle, _eval_pairs, _fill, _join
from .sft_dpo import _dpo, _sft
from .templates import (ANSWERS, CEVAL_SUBJECT, DPO_HELDOUT_ANSWERS, DPO_HELDOUT_QUESTIONS, EVAL_CEVAL_STEMS,
                        EVAL_CMEXAM_STEMS, EVAL_QA_ANSWER, EVAL_QA_QUESTIONS, FIELDS, LABEL, PROBE_TEMPLATES,
                        QUESTIONS, SFT_MCQ_STEMS, SOURCE)


@dataclass
class TinyCorpora:
    split: dict = field(default_factory=dict)          # disease -> "dcpt" | "sft" | "control"
    cpt_kg: list = field(default_factory=list)
    cpt_text: list = field(default_factory=list)
    cpt_qa: list = field(default_factory=list)
    cpt_dialogue: list = field(default_factory=list)
    sft_medical_single: list = field(default_factory=list)
    sft_medical_multi: list = field(default_factory=list)
    sft_general: list = field(default_factory=list)
    dpo_train: list = field(default_factory=list)
    dpo_heldout: list = field(default_factory=list)
    eval_cmexam: list = field(default_factory=list)
    eval_cmexam_train: list = field(default_factory=list)
    eval_ceval_dev: list = field(default_factory=list)
    eval_ceval_val: list = field(default_factory=list)
    eval_qa: list = field(default_factory=list)
    probe_texts: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    CPT = ("cpt_kg", "cpt_text", "cpt_qa", "cpt_dialogue")
    SFT = ("sft_medical_single", "sft_medical_multi", "sft_general")
    DPO = ("dpo_train", "dpo_heldout")
    EVAL = ("eval_cmexam", "eval_cmexam_train", "eval_ceval_dev", "eval_ceval_val", "eval_qa", "probe_texts")

    @classmethod
    def record_fields(cls) -> tuple[str, ...]:
        return cls.CPT + cls.SFT + cls.DPO + cls.EVAL

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in self.record_fields()}

    @property
    def cpt(self) -> list[dict]:
        return [r for name in self.CPT for r in getattr(self, name)]

    @property
    def sft(self) -> list[dict]:
        return [r for name in self.SFT for r in getattr(self, name)]


def training_texts(corpora: TinyCorpora, include_dpo_heldout: bool = True) -> list[str]:
    """Every string a training stage reads: CPT texts, SFT messages, DPO prompts/chosen/rejected."""
    out = [r["text"] for r in corpora.cpt]
    out += [m["content"] for r in corpora.sft for m in r["messages"]]
    dpo_sets = corpora.DPO if include_dpo_heldout else ("dpo_train",)
    out += [r[k] for name in dpo_sets for r in getattr(corpora, name) for k in ("prompt", "chosen", "rejected")]
    return out


def generate_tiny_corpora(config: TinyDataConfig | None = None, seed: int = 42,
                          kb_path: str | None = None) -> TinyCorpora:
    """All tiny-profile corpora from the knowledge base; same config and seed -> identical output."""
    cfg = config or TinyDataConfig()
    kb = _KB(kg.kb_entities(kb_path))
    split = split_diseases(list(kb.by_name), cfg, seed)
    dcpt = [n for n, g in split.items() if g == "dcpt"]
    sft_names = [n for n, g in split.items() if g == "sft"]
    control = [n for n, g in split.items() if g == "control"]
    taught = dcpt + sft_names

    def rng(tag: str) -> random.Random:  # one independent stream per corpus
        return random.Random(f"{seed}-{tag}")

    out = TinyCorpora(split=split)
    for name, records in _cpt_corpora(kb, taught, cfg, rng("cpt")).items():
        setattr(out, name, records)
    for name, records in _sft(kb, sft_names, cfg, rng("sft")).items():
        setattr(out, name, records)

    train_answers = lambda f, r: r.choice(ANSWERS[f])  # noqa: E731
    heldout_answers = lambda f, r: r.choice(DPO_HELDOUT_ANSWERS)  # noqa: E731
    out.dpo_train = _dpo(kb, sft_names, cfg.n_dpo_train, QUESTIONS, train_answers, cfg.dpo_evasive_fraction,
                         f"{SOURCE}/dpo_train", rng("dpo_train"))
    out.dpo_heldout = _dpo(kb, dcpt, cfg.n_dpo_heldout, DPO_HELDOUT_QUESTIONS, heldout_answers,
                           cfg.dpo_evasive_fraction, f"{SOURCE}/dpo_heldout", rng("dpo_heldout"))

    # ---- evaluation: dcpt ("taught") and control diseases, wordings no training text uses
    r = rng("cmexam")
    out.eval_cmexam = _eval_mcq(kb, _eval_pairs(dcpt, control, cfg.n_cmexam_items, r), EVAL_CMEXAM_STEMS, 5,
                                "tiny-cmexam", f"{SOURCE}/cmexam", lambda f: kg.FIELD_LABELS[f], r)
    # The task-adaptation split (AntGLM-Med's third stage): the same 5-option format, about the sft
    # diseases and in SFT's own exam wordings, so adapting to it teaches the answer format, not the test facts.
    r = rng("cmexam_train")
    train_pairs = [(d, f, "sft") for d, f in _cycle([(d, f) for d in sft_names for f in FIELDS],
                                                    cfg.n_cmexam_train, r)]
    out.eval_cmexam_train = _eval_mcq(kb, train_pairs, SFT_MCQ_STEMS, 5, "tiny-cmexam-train",
                                      f"{SOURCE}/cmexam_train", lambda f: kg.FIELD_LABELS[f], r)
    r = rng("ceval")
    dev_pairs = [(d, f, "taught") for d, f in
                 _cycle([(d, f) for d in dcpt for f in FIELDS], cfg.n_ceval_dev, r)]
    out.eval_ceval_dev = _eval_mcq(kb, dev_pairs, EVAL_CEVAL_STEMS, 4, "tiny-ceval-dev", f"{SOURCE}/ceval",
                                   CEVAL_SUBJECT.get, r)
    val_pairs = _eval_pairs(dcpt, control, cfg.n_ceval_items, r, exclude={(d, f) for d, f, _ in dev_pairs})
    out.eval_ceval_val = _eval_mcq(kb, val_pairs, EVAL_CEVAL_STEMS, 4, "tiny-ceval-val", f"{SOURCE}/ceval",
                                   CEVAL_SUBJECT.get, r)
    r = rng("qa")
    for i, (name, f, group) in enumerate(_eval_pairs(dcpt, control, cfg.n_qa_test, r)):
        e = kb.by_name[name]
        rec = qa(f"tiny-qa-{i:04d}", _fill(r.choice(EVAL_QA_QUESTIONS[f]), name),
                 EVAL_QA_ANSWER.format(n=name, label=LABEL[f], v=_join(e[f], r)), f"{SOURCE}/qa_test")
        rec.update({"disease": name, "group": group, "field": f})
        out.eval_qa.append(rec)
    r = rng("probe")
    for name, f, group in _eval_pairs(dcpt, control, cfg.n_probe_texts, r):
        e = kb.by_name[name]
        text = _fill(r.choice(PROBE_TEMPLATES[f]), name, _join(e[f], r))
        out.probe_texts.append({"text": text, "disease": name, "group": group, "field": f})

    cpt_chars = sum(len(rec["text"]) for rec in out.cpt)
    out.metadata = {
        "seed": seed,
        "config": dataclasses.asdict(cfg),
        "kb": {"n_diseases": len(kb.entities), "n_facts_taught": sum(len(kb.by_name[n][f]) for n in taught
                                                                     for f in FIELDS)},
        "groups": {"dcpt": dcpt, "sft": sft_names, "control": control},
        "exposures_per_fact_per_epoch": _exposures(out.cpt, kb, taught),
        "cpt_chars": cpt_chars,
        # tokens ~ chars for a character-level vocab; a byte-level BPE trained on this corpus gives fewer
        "cpt_tokens_estimate": cpt_chars,
        "counts": out.counts(),
    }
    return out
