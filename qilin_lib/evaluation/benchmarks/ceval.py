"""C-Eval (hkust-nlp/ceval), its three medical subjects, val split (the test split's answers are hidden).

Prompt: the answer-only prompt of C-Eval's evaluator: `以下是中国关于{科目}考试的单项选择题，请选出其中的
正确答案。` then 5 dev shots `question / A. x / ... / 答案：X`, then the item ending in `答案：`. Parsers: C-Eval's
own extraction first, Qilin-Med's copy of it beside, CMExam's. Accuracy overall and per subject (paper
Table 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..results import Results, first_parser, frame, mode_value, value
from .base import Benchmark

CEVAL_SUBJECTS = {"clinical_medicine": "临床医学", "physician": "医师资格", "basic_medicine": "基础医学"}


@dataclass
class CEval(Benchmark):
    shots: dict = field(default_factory=dict)          # subject -> dev records

    name = "ceval"
    parsers = ("ceval", "ceval_qilin", "cmexam")
    tiny_split = "ceval_val"                            # with ceval_dev's five shots (from_tiny)
    by_subject = True
    caption = "C-Eval medical subjects, val split, 5-shot answer-only (paper Table 4 shape): accuracy"
    knowledge_caption = ("Knowledge injection, tiny C-Eval-style set (4 options, chance 25%): accuracy by scoring "
                         "mode; generate = 5-shot greedy + C-Eval regex")

    @classmethod
    def from_spec(cls, spec: dict) -> CEval:
        """A local ceval-exam directory or the hub dataset (`ceval/ceval-exam`, one config per subject)."""
        subjects = spec.get("subjects", list(CEVAL_SUBJECTS))
        splits = {s: _subject(spec["path"], s) for s in subjects}
        return cls([r for s in subjects for r in splits[s]["val"]], shots={s: list(splits[s]["dev"]) for s in subjects})

    @classmethod
    def from_tiny(cls, rows) -> CEval:
        # The tiny set has 5 dev shots in all; every subject's prompt gets all five.
        dev, val = rows("ceval_dev"), rows(cls.tiny_split)
        return cls(val, shots={s: dev for s in {r["subject"] for r in val}})

    def prompt(self, item: dict) -> str:
        subject = item["subject"]
        header = f"以下是中国关于{CEVAL_SUBJECTS.get(subject, subject)}考试的单项选择题，请选出其中的正确答案。\n\n"
        shots = "".join(self._example(s) + f"{s['answer']}\n\n" for s in self.shots.get(subject, []))
        return header + shots + self._example(item)

    @staticmethod
    def _example(item: dict) -> str:
        options = "".join(f"\n{letter}. {text}" for letter, text in item["options"].items())
        return f"{item['question']}{options}\n答案："

    @classmethod
    def table(cls, res: Results):
        rows = []
        for model in res.models:
            if not res.has(model, "ceval"):
                continue
            row = {"model": model}
            subjects = res.get(model, "ceval", "loglik", "by_subject") or {}
            for mode in ("generate", "loglik"):
                key = ("generate", first_parser(res, model, "ceval")) if mode == "generate" else ("loglik",)
                for subject in sorted(subjects):
                    row[f"{subject} ({mode})"] = value(res, model, "ceval", *key, "by_subject", subject, "accuracy")
                row[f"average ({mode})"] = mode_value(res, model, "ceval", mode)
            rows.append(row)
        return frame(rows) if rows else None


def _subject(path: str, subject: str) -> dict:
    """dev + val records of one subject from a local ceval-exam directory or the hub dataset."""
    from ...data import records, sources

    if Path(path).expanduser().is_dir():
        return sources.load_ceval_subject(Path(path).expanduser(), subject)
    import datasets

    out = {}
    for split in ("dev", "val"):
        rows = datasets.load_dataset(path.removeprefix("hf://datasets/"), subject, split=split)
        out[split] = [records.mcq(id=str(r["id"]), question=r["question"], options={k: r[k] for k in "ABCD"},
                                  answer=r["answer"], source="ceval", explanation=r.get("explanation") or "",
                                  subject=subject) for r in rows]
    return out
