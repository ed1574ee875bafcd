"""`evaluate` module: PubMedQA yes/no/maybe accuracy and macro-F1, x100.

Protocol (DESIGN.md section 4): accuracy over all rows and scikit-learn macro-F1 over the fixed labels
yes/no/maybe, so a class never predicted still counts. The math lives in `qilin_lib.evaluation.metrics.labels`.
"""

import datasets
import evaluate

from qilin_lib.evaluation.metrics.labels import fixed_label_scores

_DESCRIPTION = """PubMedQA (reasoning-required) metrics: accuracy over all rows, and
sklearn.metrics.f1_score(references, predictions, labels=["yes", "no", "maybe"], average="macro"), so a label
absent from the predictions contributes F1 0 to the average. A prediction outside the labels (nothing parsed)
is wrong. Both x100."""

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
    accuracy, macro_f1: x100.
Examples:
    >>> m = evaluate.load("qilin_lib/evaluation/metrics/pubmedqa_label")
    >>> m.compute(predictions=["yes", "no"], references=["yes", "no"])["accuracy"]
    100.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PubmedqaLabel(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/pubmedqa/pubmedqa"],
        )

    def _compute(self, predictions, references, labels: tuple[str, ...] = ("yes", "no", "maybe")) -> dict:
        return fixed_label_scores(references, predictions, labels=labels)
