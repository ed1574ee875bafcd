"""PubMedQA reasoning-required (pubmedqa/pubmedqa, PQA-L): yes/no/maybe questions on an abstract.

Prompt: the abstract's contexts, the question, the three labels as options `A yes / B no / C maybe` and
`Answer:`; scored as a 3-option multiple-choice item whose gold letter is the label's, so that `loglik` and
VoC apply unchanged and the metrics read labels again: accuracy, and macro-F1 as the official
`evaluation.py` computes it (over the labels present) beside the fixed yes/no/maybe variant.

Source: `{"path": ori_pqal.json, "test_ids": test_ground_truth.json}`, the official 500-item test split, the
other 500 labelled items being its training split (task adaptation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from ..intervals import IntervalSpec
from ..results import Results, frame, mode_value, published_rows
from ..task_metrics import mcq_metrics
from .base import Benchmark

PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


def pubmedqa_as_mcq(item: dict) -> dict:
    """A PubMedQA item with its label as the gold letter of the three label options."""
    letter = next(k for k, v in PUBMEDQA_OPTIONS.items() if v == item["answer"])
    return {**item, "options": dict(PUBMEDQA_OPTIONS), "answer": letter, "label": item["answer"]}


def pubmedqa_letter(output: str, options: dict) -> str:
    """PubMedQA's yes/no/maybe word in the output, as its option letter ("" when none)."""
    from ..extraction import pubmedqa_label

    label = pubmedqa_label(output)
    return next((k for k, v in options.items() if v == label), "")


class PubMedQA(Benchmark):
    name = "pubmedqa"
    parsers = ("pubmedqa", "strict")
    f1_key = "macro_f1"
    published: ClassVar[dict[str, str]] = {"accuracy": "accuracy (generate)"}
    paper_map = (("AntGLM-Med 10B", "accuracy", "adapt", "pubmedqa_voc", ("voc", "accuracy")),)
    caption = ("PubMedQA reasoning-required (yes/no/maybe): accuracy; macro_f1 = PubMedQA's evaluation.py (sklearn "
               "macro over the labels present, an unparsed answer being one extra label with F1 0); "
               "macro_f1_fixed_labels = macro over exactly yes/no/maybe")

    @classmethod
    def from_spec(cls, spec: dict) -> PubMedQA:
        from ...data import sources

        items = [pubmedqa_as_mcq(r) for r in sources.load_pubmedqa_json(spec["path"])]
        if not spec.get("test_ids"):
            return cls(items)
        # the official split: test = the PMIDs of test_ground_truth.json
        test_ids = set(json.loads(Path(spec["test_ids"]).expanduser().read_text("utf-8")))
        return cls([r for r in items if r["id"] in test_ids], train=[r for r in items if r["id"] not in test_ids])

    def prompt(self, item: dict) -> str:
        options = "\n".join(f"{k} {v}" for k, v in PUBMEDQA_OPTIONS.items())
        return f"{self.stem(item)}\n{options}\nAnswer:"

    def stem(self, item: dict) -> str:
        return f"Context: {item['context']}\nQuestion: {item['question']}"

    def parser_functions(self) -> dict:
        from ..extraction import PARSERS

        return {name: pubmedqa_letter if name == "pubmedqa" else PARSERS[name] for name in self.parsers}

    def score(self, rows: list[dict], intervals: IntervalSpec, breakdown: bool = True) -> dict:
        return mcq_metrics(self.items, rows, labels=True, intervals=intervals)

    @classmethod
    def table(cls, res: Results):
        ours = [{"model": m, "kind": f"ours ({res.profile})",
                 "accuracy (generate)": mode_value(res, m, "pubmedqa", "generate"),
                 "macro_f1 (generate)": mode_value(res, m, "pubmedqa", "generate", "macro_f1"),
                 "macro_f1_fixed_labels (generate)": mode_value(res, m, "pubmedqa", "generate", "macro_f1_fixed_labels"),
                 "accuracy (loglik)": mode_value(res, m, "pubmedqa", "loglik"), "source": "this run"}
                for m in res.models if res.has(m, "pubmedqa")]
        return frame(ours + published_rows("pubmedqa", cls.published)) if ours else None

    @classmethod
    def voc_published(cls) -> list[dict]:
        return [r | {"benchmark": "pubmedqa"}
                for r in published_rows("pubmedqa", {"accuracy": "VoC"}, " (AntGLM-Med: VoC; others: their methods)")]
