"""`evaluate` module: Distinct-1/2 per output, averaged over outputs (Huatuo-26M's scale), on token lists.

Protocol (DESIGN.md section 4): distinct n-grams / all n-grams of each output, averaged over outputs; an
output without any n-gram counts 0. Not x100 (published values are 0.51 / 0.68). The math lives in
`qilin_lib.evaluation.metrics.text_overlap`.
"""

import evaluate

from qilin_lib.evaluation.metrics.template import metric_info
from qilin_lib.evaluation.metrics.text_overlap import distinct

_DESCRIPTION = """Distinct-n (Li et al. 2016): for each output, the number of distinct n-grams divided by the
number of n-grams; averaged over outputs (pooling over the corpus would give values near 0.03, not the
published 0.51 / 0.68). An output with no n-gram of order n counts 0. Returned as a fraction, not x100.
Inputs are token lists; no references."""

_CITATION = """@inproceedings{li2016diversity,
  title={A Diversity-Promoting Objective Function for Neural Conversation Models},
  author={Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill},
  booktitle={NAACL}, year={2016}}"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of token lists, one per output.
    orders: n-gram orders to report (default (1, 2)).
Returns:
    distinct_<n> for each order: mean per-output ratio in [0, 1].
Examples:
    >>> m = evaluate.load("qilin_lib/evaluation/metrics/distinct")
    >>> m.compute(predictions=[list("好好休息")])["distinct_1"]
    0.75
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Distinct(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "tokens, no references",
                           "https://aclanthology.org/N16-1014/")

    def _compute(self, predictions, orders: tuple[int, ...] = (1, 2)) -> dict:
        return distinct(predictions, orders=orders)
