"""`evaluate` module: CMExam answer accuracy and weighted F1 on predicted letter strings, x100.

Protocol (DESIGN.md section 4, CMExam's `evaluate_*_result.py`): exact match over all rows (no answer is
wrong); scikit-learn weighted F1 with the answer strings as labels. The math lives in
`qilin_lib.evaluation.metrics.labels`.
"""

import evaluate

from qilin_lib.evaluation.metrics.labels import mcq_answer_scores
from qilin_lib.evaluation.metrics.template import metric_info

_DESCRIPTION = """Multiple-choice answer metrics of the CMExam benchmark scripts. Predictions and references are
answer strings of option letters (e.g. "B", "ACD"). Accuracy: exact string match over all rows; an empty
prediction (no answer parsed) is wrong. F1: sklearn.metrics.f1_score(references, predictions,
average="weighted") with the answer strings as class labels; an empty prediction becomes the label "无答案"
(the scripts' "no answer"), which no reference carries. Both x100."""

_CITATION = """@inproceedings{liu2023benchmarking,
  title={Benchmarking Large Language Models on CMExam -- A Comprehensive Chinese Medical Exam Dataset},
  author={Liu, Junling and Zhou, Peilin and Hua, Yining and others}, booktitle={NeurIPS Datasets and
  Benchmarks}, year={2023}}"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted answer strings ("" = no answer).
    references: gold answer strings.
Returns:
    accuracy, weighted_f1: x100.
Examples:
    >>> m = evaluate.load("qilin_lib/evaluation/metrics/mcq_answer")
    >>> m.compute(predictions=["A", "", "BC"], references=["A", "B", "BC"])["accuracy"]
    66.66666666666667
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class McqAnswer(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "strings",
                           "https://github.com/williamliujl/CMExam/tree/main/src/evaluation")

    def _compute(self, predictions, references) -> dict:
        return mcq_answer_scores(references, predictions)
