"""Answer-label metrics (DESIGN.md section 4), x100.

- CMExam answer prediction, as its `evaluate_*_result.py` scripts: accuracy = exact match of the predicted
  letter string (e.g. "ACD") with the gold one over *all* rows, a missing answer counting as wrong; F1 =
  scikit-learn weighted F1 with the answer strings themselves as labels (so "AC" and "ACD" are different
  classes), a missing answer being its own label ("无答案", the scripts' name) that no gold carries.
- PubMedQA, as its pubmedqa/pubmedqa evaluation.py (commit 3e7616d288b52edaf38f5fd5c59821c7806bde86)
  computes them: `accuracy_score(truth, preds)` and `f1_score(truth, preds, average='macro')`, the macro
  average running over every label that occurs in golds or predictions. That script reads one prediction per
  test PMID from a JSON (it asserts all and only the test PMIDs are there), so an output we could not parse
  has to be written down as something: it enters as one extra label, "无答案", the same for every unparsed
  row. That label has F1 0 (no gold carries it), so with unparsed rows the average runs over four labels
  (yes/no/maybe + 无答案), and a yes/no/maybe label that occurs in neither golds nor predictions is not
  averaged at all. `macro_f1_fixed_labels` is the other reading, averaged over exactly yes/no/maybe.
"""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import f1_score

from ..extraction import NO_ANSWER  # CMExam's label for a missing answer, one definition


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


def pubmedqa_scores(golds: Sequence[str], preds: Sequence[str | None],
                    labels: Sequence[str] = ("yes", "no", "maybe")) -> dict:
    """`accuracy`, `macro_f1` (PubMedQA's evaluation.py) and `macro_f1_fixed_labels` (x100); "" or None
    means nothing was parsed, which is wrong for accuracy and the label "无答案" for `macro_f1`."""
    _require_rows(golds, preds)
    if unknown := sorted(set(golds) - set(labels)):
        raise ValueError(f"gold labels {unknown} are not among {list(labels)}")
    if NO_ANSWER in labels:
        raise ValueError(f"{NO_ANSWER!r} is the unparsed-prediction label and cannot be a gold label")
    labelled = [p or NO_ANSWER for p in preds]
    # evaluation.py: f1_score(truth, preds, average='macro'), labels = those present; zero_division=0 is
    # sklearn's default value minus the warning (the unparsed label has no gold, so its recall is 0/0).
    official = f1_score(list(golds), labelled, average="macro", zero_division=0)
    fixed = f1_score(list(golds), labelled, labels=list(labels), average="macro", zero_division=0)
    return {"accuracy": _accuracy(golds, labelled), "macro_f1": 100 * float(official),
            "macro_f1_fixed_labels": 100 * float(fixed)}
