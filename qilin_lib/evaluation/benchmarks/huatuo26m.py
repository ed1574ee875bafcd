"""Huatuo-26M test set (FreedomIntelligence/huatuo26M-testdatasets): open medical QA, scored on text.

Prompt: the question alone (the test set has no instruction). Greedy generation; BLEU-1..4 (nmt), GLEU
(nltk), ROUGE (nmt) on characters, Distinct-n per output (paper Table 6).
"""

from __future__ import annotations

from typing import ClassVar

from ..intervals import IntervalSpec
from ..results import Results, frame, published_rows, value
from ..task_metrics import text_metrics, with_groups
from .base import Benchmark

METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "gleu", "rouge_1", "rouge_2", "rouge_l", "distinct_1", "distinct_2")


class Huatuo26M(Benchmark):
    name = "huatuo26m"
    loader = "huatuo26m_json"
    kind = "qa"
    parsers = ()
    tiny_split = "qa"
    published: ClassVar[dict[str, str]] = {k: k for k in METRICS}
    paper_map = tuple((model, metric, ours, "huatuo26m", ("generate", metric))
                      for model, ours in (("Qilin-Med-7B-SFT", "sft"), ("Qilin-Med-7B-DPO", "dpo"))
                      for metric in ("bleu_1", "rouge_1"))
    caption = ("Huatuo-26M test (paper Table 6 shape): greedy generation; BLEU-1..4 (nmt), GLEU (nltk), ROUGE "
               "(nmt) on characters; Distinct-n per output, averaged")

    def prompt(self, item: dict) -> str:
        return item["question"]

    def score(self, rows: list[dict], intervals: IntervalSpec, breakdown: bool = True) -> dict:
        """The generation columns of rows {output, reference}, with a bootstrap interval beside each."""
        def scores(rs: list[dict]) -> dict:
            return text_metrics([r["output"] for r in rs], [r["reference"] for r in rs], intervals) | {"n": len(rs)}
        return with_groups(self.items, rows, scores)

    @classmethod
    def table(cls, res: Results):
        ours = [{"model": m, "kind": f"ours ({res.profile})",
                 **{k: value(res, m, "huatuo26m", "generate", k, digits=3 if k.startswith("distinct") else 2)
                    for k in METRICS}, "source": "this run"}
                for m in res.models if res.has(m, "huatuo26m")]
        return frame(ours + published_rows("huatuo26m", cls.published)) if ours else None

    @classmethod
    def rag_columns(cls, res: Results, model: str, task: str) -> dict:
        return {"huatuo bleu_1": value(res, model, task, "generate", "bleu_1", digits=2),
                "huatuo rouge_1": value(res, model, task, "generate", "rouge_1", digits=2)}
