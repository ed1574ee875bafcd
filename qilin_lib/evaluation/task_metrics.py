"""The metrics of one task's prediction rows, overall and per item group, each with its 95% interval: what
a benchmark module (qilin_lib.evaluation.benchmarks) computes from the rows the scoring modes return.

    mcq_metrics(items, rows)                  # accuracy + weighted F1 over answer strings (CMExam's definition)
    mcq_metrics(items, rows, labels=True)     # PubMedQA: the yes/no/maybe label each letter stands for
    text_metrics(outputs, references, spec)   # Huatuo-26M's generation columns
"""

from __future__ import annotations

from .intervals import (
    DEFAULT_SPEC,
    IntervalSpec,
    accuracy_interval,
    f1_interval,
    overlap_intervals,
)
from .metrics import (
    TOKENIZERS,
    explanation_scores,
    generation_scores,
    label_scores,
    mcq_scores,
)


def with_groups(items: list[dict], rows: list[dict], score, keys: tuple = ("group",)) -> dict:
    """score(rows) overall, plus `by_<key>` breakdowns for the item fields in `keys` that are set."""
    out = score(rows)
    for key in keys:
        values = sorted({it[key] for it in items if it.get(key)})
        if values:
            out[f"by_{key}"] = {v: score([r for it, r in zip(items, rows) if it.get(key) == v]) for v in values}
    return out


def mcq_metrics(items: list[dict], rows: list[dict], labels: bool = False, by_subject: bool = False,
                intervals: IntervalSpec = DEFAULT_SPEC) -> dict:
    """Accuracy and weighted F1 over answer strings (CMExam's definition); for PubMedQA (`labels`) the
    yes/no/maybe accuracy and macro-F1s of the label the letter stands for (an unparsed letter is ""). Each with
    its 95% interval (`accuracy_ci95`: Wilson; the F1s' `_ci95`: bootstrap; qilin_lib.evaluation.intervals)."""
    options = items[0]["options"] if items else {}  # PubMedQA: the same three label options on every item

    def score(rs: list[dict]) -> dict:
        if labels:
            golds, preds = [options[r["answer"]] for r in rs], [options.get(r["pred"], "") for r in rs]
            out = label_scores(golds, preds)
            out["macro_f1_ci95"] = f1_interval(golds, preds, "macro", intervals)  # official: labels present
            out["macro_f1_fixed_labels_ci95"] = f1_interval(golds, preds, "macro", intervals,
                                                            labels=("yes", "no", "maybe"))
        else:
            golds, preds = [r["answer"] for r in rs], [r["pred"] for r in rs]
            out = mcq_scores(golds, preds)
            out["weighted_f1_ci95"] = f1_interval(golds, preds, "weighted", intervals)
        out["accuracy_ci95"] = accuracy_interval([g == p for g, p in zip(golds, preds)])
        return out | {"n": len(rs)}
    return with_groups(items, rows, score, ("group", "subject") if by_subject else ("group",))


def text_metrics(outputs: list[str], references: list[str], intervals: IntervalSpec) -> dict:
    """Huatuo-26M columns (generation_scores, characters) with a bootstrap `<metric>_ci95` beside each."""
    scores = generation_scores(outputs, references)
    hyps, refs = [TOKENIZERS["char"](t) for t in outputs], [TOKENIZERS["char"](t) for t in references]
    keys = [k for k in scores if k != "brevity_penalty"]
    return scores | overlap_intervals(hyps, refs, intervals, keys)


def explanation_metrics(outputs: list[str], references: list[str], intervals: IntervalSpec) -> dict:
    """CMExam explanation BLEU (jieba) and ROUGE (characters) with a bootstrap `<metric>_ci95` beside each."""
    scores = explanation_scores(outputs, references)
    jieba, char = TOKENIZERS["jieba"], TOKENIZERS["char"]
    hyps, refs = [jieba(t) for t in outputs], [jieba(t) for t in references]
    chars = ([char(t) for t in outputs], [char(t) for t in references])
    return scores | overlap_intervals(hyps, refs, intervals, list(scores), rouge_tokens=chars)
