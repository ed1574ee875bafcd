"""Every corpus the tiny profile needs, generated from the repo's own knowledge base (DESIGN.md section 3).

    corpora = generate_tiny_corpora(TinyDataConfig(), seed=42)
    corpora.counts()            # {"cpt_kg": ..., "eval_cmexam": 300, ...}

The diseases of the KB are split three ways (seeded):
- dcpt:    taught by the DCPT corpus and evaluated (MCQ, QA, probes, DPO held-out);
- sft:     taught by the DCPT corpus too, and the only diseases SFT and DPO-train items are about;
- control: in no training text at all (no CPT, SFT or DPO text names them); they appear only in the
           evaluation and probe sets, as the "never taught" baseline.

DCPT corpus. Each fact (disease, field, value) of a taught disease is restated `restatements_per_fact`
times per epoch: the generator runs that many rounds per disease, and every round states every fact of the
disease exactly once, as one KG passage (kg.entity_to_passage), one encyclopedia paragraph, a few QA texts
or a few dialogues (`cpt_mix` sets the shares). Templates, field order and value order vary per round.
The metadata reports the exposures actually found by searching the generated texts.

Evaluation wordings. The question templates of the evaluation sets (EVAL_* and PROBE_* in templates.py) are kept
apart from every training template, and `eval_stems()` lists their literal pieces so that a test can check
that no training text contains one: the tables then measure knowledge, not string recall.

Distractors of multiple-choice items are other diseases' values of the same field, drawn in proportion to
how many KB diseases have that value, never a value of the asked disease (nor one that contains or is
contained in one of its values or its name). Answer letters are balanced over positions.

Layout (one concept per module; everything below is importable from qilin_lib.data.tiny):
    templates.py   every wording (training, evaluation, general chat), eval_templates, eval_stems
    kb.py          the knowledge base helper (values, frequencies, distractors), split_diseases
    sampling.py    seeded draws shared by the builders
    cpt_corpus.py  the DCPT corpus, count_exposures
    mcq.py         multiple-choice items (SFT exam items and the evaluation MCQ sets), format_mcq_prompt
    sft_dpo.py     SFT conversations and DPO pairs
    generate.py    generate_tiny_corpora, TinyCorpora, training_texts
"""

from __future__ import annotations

from .cpt_corpus import count_exposures
from .generate import TinyCorpora, generate_tiny_corpora, training_texts
from .kb import split_diseases
from .mcq import format_mcq_prompt
from .templates import (ANSWERS, CEVAL_SUBJECT, DIALOGUE_ROLES, DPO_HELDOUT_ANSWERS, DPO_HELDOUT_QUESTIONS, ENCYC,
                        ENCYC_OPEN, EVAL_CEVAL_STEMS, EVAL_CMEXAM_STEMS, EVAL_QA_ANSWER, EVAL_QA_QUESTIONS, EVASIVE,
                        FIELDS, GREETINGS, LABEL, LETTERS, PATIENT_FIRST, PATIENT_FOLLOW, PRIOR_NAME, PROBE_TEMPLATES,
                        PRONOUNS, QA_FORMATS, QUESTIONS, SENTENCES, SFT_MCQ_STEMS, SOURCE, UNITS, WEEKDAYS, WORDS,
                        eval_stems, eval_templates)

__all__ = [
    "generate_tiny_corpora", "TinyCorpora", "training_texts", "count_exposures", "split_diseases",
    "format_mcq_prompt", "eval_stems", "eval_templates",
    # the wordings and constants (templates.py)
    "FIELDS", "SOURCE", "LETTERS", "PRIOR_NAME", "LABEL", "CEVAL_SUBJECT", "ENCYC_OPEN", "ENCYC", "PRONOUNS",
    "QUESTIONS", "ANSWERS", "QA_FORMATS", "PATIENT_FIRST", "PATIENT_FOLLOW", "DIALOGUE_ROLES", "SFT_MCQ_STEMS",
    "DPO_HELDOUT_QUESTIONS", "DPO_HELDOUT_ANSWERS", "EVASIVE", "EVAL_CMEXAM_STEMS", "EVAL_CEVAL_STEMS",
    "EVAL_QA_QUESTIONS", "EVAL_QA_ANSWER", "PROBE_TEMPLATES", "GREETINGS", "UNITS", "SENTENCES", "WORDS", "WEEKDAYS",
]
