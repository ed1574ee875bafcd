"""`evaluate` module: PubMedQA yes/no/maybe accuracy and macro-F1, x100.

Protocol (DESIGN.md section 4): accuracy over all rows and scikit-learn macro-F1 as PubMedQA's own
evaluation.py computes it (over the labels present, an unparsed prediction being one extra label), plus the
macro-F1 over exactly yes/no/maybe as a second, named key. The math lives in
`qilin_lib.evaluation.metrics.labels`.
"""

import evaluate

from qilin_lib.evaluation.metrics.labels import pubmedqa_scores
from qilin_lib.evaluation.metrics.template import metric_info

_DESCRIPTION = """PubMedQA (reasoning-required) metrics, as pubmedqa/pubmedqa evaluation.py: accuracy over all
rows, and macro_f1 = sklearn.metrics.f1_score(references, predictions, average="macro"), averaged over every
label present in references or predictions; a prediction with nothing parsed is the label "无答案" (F1 0), so
unparsed rows add a fourth label to the average. macro_f1_fixed_labels = the same with labels=["yes", "no",
"maybe"]: exactly those three, a label absent from both sides contributing F1 0. All x100."""

_CITATION = """@inproceedings{jin2019pubmedqa,
  title={PubMedQA: A Dataset for Biomedical Research Question Answering},
  author={Jin, Qiao and Dhingra, Bhuwan and Liu, Zhengping and Cohen, William and Lu, Xinghua},
  booktitle={EMNLP-IJCNLP}, year={2019}}"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted labels ("" = nothing parsed).
    references: gold labels, each one of `labels`.
    labels: the label set (default ("yes", "no", "maybe")).
Returns:
    accuracy, macro_f1 (PubMedQA's evaluation.py), macro_f1_fixed_labels: x100.
Examples:
    >>> m = evaluate.load("qilin_lib/evaluation/metrics/pubmedqa_label")
    >>> m.compute(predictions=["yes", "no"], references=["yes", "no"])["accuracy"]
    100.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PubmedqaLabel(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "strings",
                           "https://github.com/pubmedqa/pubmedqa")

    def _compute(self, predictions, references, labels: tuple[str, ...] = ("yes", "no", "maybe")) -> dict:
        return pubmedqa_scores(references, predictions, labels=labels)
