"""Answer-label metrics (DESIGN.md section 4), x100.

- CMExam answer prediction, as its `evaluate_*_result.py` scripts: accuracy = exact match of the predicted
  letter string (e.g. "ACD") with the gold one over *all* rows, a missing answer counting as wrong; F1 =
  scikit-learn weighted F1 with the answer strings themselves as labels (so "AC" and "ACD" are different
  classes), a missing answer being its own label ("无答案", the scripts' name) that no gold carries.
- PubMedQA: accuracy and macro-F1 over the fixed labels yes/no/maybe, so a class the model never predicts
  still counts (with F1 0) in the macro average.
"""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import f1_score

NO_ANSWER = "无答案"


def _require_rows(golds: Sequence[str], preds: Sequence[str | None]) -> None:
    if not golds:
        raise ValueError("no rows to score")
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} golds but {len(preds)} predictions")


def _accuracy(golds: Sequence[str], preds: Sequence[str]) -> float:
    return 100 * sum(g == p for g, p in zip(golds, preds)) / len(golds)


def mcq_answer_scores(golds: Sequence[str], preds: Sequence[str | None]) -> dict:
    """`accuracy` and `weighted_f1` (x100) of predicted answer strings; "" or None means no answer."""
    _require_rows(golds, preds)
    if any(not g or g == NO_ANSWER for g in golds):
        raise ValueError(f"a gold answer is empty or {NO_ANSWER!r}")
    labelled = [p or NO_ANSWER for p in preds]
    # zero_division=0 is sklearn's default value, minus the warning for answer strings nobody predicted.
    weighted = f1_score(list(golds), labelled, average="weighted", zero_division=0)
    return {"accuracy": _accuracy(golds, labelled), "weighted_f1": 100 * float(weighted)}


def fixed_label_scores(golds: Sequence[str], preds: Sequence[str | None],
                       labels: Sequence[str] = ("yes", "no", "maybe")) -> dict:
    """`accuracy` and `macro_f1` (x100) over `labels`; a prediction outside them (unparsed) is simply wrong."""
    _require_rows(golds, preds)
    if unknown := sorted(set(golds) - set(labels)):
        raise ValueError(f"gold labels {unknown} are not among {list(labels)}")
    cleaned = [p or "" for p in preds]
    macro = f1_score(list(golds), cleaned, labels=list(labels), average="macro", zero_division=0)
    return {"accuracy": _accuracy(golds, cleaned), "macro_f1": 100 * float(macro)}
