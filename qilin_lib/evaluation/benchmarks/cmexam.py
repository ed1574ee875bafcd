"""CMExam (williamliujl/CMExam): Chinese national medical licensing exam questions with explanations.

Prompt: the question, one `A xxx` line per option, `答案：` (CMExam's own prompt layout). Scored on the
answer letters (accuracy and weighted F1 over answer strings, CMExam's definition) and on the explanation
after them, cut at `解释:` as CMExam's scripts do (BLEU on jieba words, ROUGE on characters). Paper Table 5.
"""

from __future__ import annotations

from typing import ClassVar

from ..extraction import cmexam_explanation
from ..intervals import IntervalSpec
from ..results import Results, frame, generate_value, mode_value, published_rows, value
from ..task_metrics import explanation_metrics
from .base import Benchmark

GENERATE_ACCURACY = ("generate", "cmexam", "accuracy")


class CMExam(Benchmark):
    name = "cmexam"
    loader = "cmexam_csv"
    tiny_split, tiny_train_split = "cmexam", "cmexam_train"
    published: ClassVar[dict[str, str]] = {"accuracy": "accuracy", "weighted_f1": "weighted_f1"}
    paper_map = (("Baichuan-7B", "accuracy", "base", "cmexam", GENERATE_ACCURACY),
                 ("Qilin-Med-7B-CPT", "accuracy", "dcpt", "cmexam", GENERATE_ACCURACY),
                 ("Qilin-Med-7B-SFT", "accuracy", "sft", "cmexam", GENERATE_ACCURACY),
                 ("Qilin-Med-RAG", "accuracy", "sft", "cmexam_rag", GENERATE_ACCURACY))
    caption = ("CMExam (paper Table 5 shape): answer accuracy and weighted F1 (generate, CMExam parser; strict "
               "parser and next-token loglik beside), explanation BLEU (jieba) and ROUGE (characters)")
    knowledge_caption = ("Knowledge injection, tiny CMExam-style set (5 options, chance 20%): accuracy by scoring "
                         "mode; generate = greedy + CMExam parser; taught = diseases in the DCPT corpus, control = "
                         "in no training text; prior-only = disease name removed")

    def generation_metrics(self, rows: list[dict], intervals: IntervalSpec) -> dict:
        """The explanation as CMExam's script cuts it (after "解释:"), scored against the gold one."""
        pairs = [(it, r) for it, r in zip(self.items, rows) if it.get("explanation")]
        if not pairs:
            return {}
        return {"generate_explanation": explanation_metrics([cmexam_explanation(r["output"]) for _, r in pairs],
                                                            [it["explanation"] for it, _ in pairs], intervals)}

    @classmethod
    def table(cls, res: Results):
        ours = [{"model": model, "kind": f"ours ({res.profile})",
                 "accuracy": generate_value(res, model, "cmexam", "cmexam"),
                 "weighted_f1": generate_value(res, model, "cmexam", "cmexam", "weighted_f1"),
                 "accuracy (strict parser)": generate_value(res, model, "cmexam", "strict"),
                 "accuracy (loglik)": mode_value(res, model, "cmexam", "loglik"),
                 **{k: value(res, model, "cmexam", "generate_explanation", k)
                    for k in ("bleu_1", "bleu_4", "rouge_1", "rouge_2", "rouge_l")}, "source": "this run"}
                for model in res.models if res.has(model, "cmexam")]
        return frame(ours + published_rows("cmexam", cls.published)) if ours else None

    @classmethod
    def rag_published(cls) -> list[dict]:
        return [r | {"retrieval": "unpublished retriever"}
                for r in published_rows("cmexam", {"accuracy": "cmexam accuracy (generate)"})
                if r["model"] == "Qilin-Med-RAG"]
