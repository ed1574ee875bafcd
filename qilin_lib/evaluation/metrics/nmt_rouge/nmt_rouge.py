"""`evaluate` module: ROUGE-1/2/L exactly as tensorflow/nmt `rouge.py` (CMExam's ROUGE), on token lists.

Protocol (DESIGN.md section 4): per sentence, ROUGE-N F over n-gram *sets* and ROUGE-L F from the LCS with
beta = P/R; F averaged over sentences, x100. The math lives in `qilin_lib.evaluation.metrics.text_overlap`.
"""

import evaluate

from qilin_lib.evaluation.metrics.template import metric_info
from qilin_lib.evaluation.metrics.text_overlap import nmt_rouge

_DESCRIPTION = """ROUGE-1, ROUGE-2 and ROUGE-L F-scores as tensorflow/nmt's rouge.py (the code the CMExam
benchmark scripts call). ROUGE-N: overlap of the *sets* of n-grams of output and reference, P = overlap/|output
set|, R = overlap/|reference set|, F = 2PR/(P+R+1e-8). ROUGE-L: sentence-level LCS, F = (1+b^2)RP/(R+b^2 P)
with b = P/R. Each F is averaged over sentences and reported x100. rouge-score differs (it counts repeated
n-grams and uses b = 1). Inputs are token lists (one reference per output); an empty token list is scored as
nmt scores an empty string, i.e. as the single word ""."""

_CITATION = """@inproceedings{lin2004rouge,
  title={ROUGE: A Package for Automatic Evaluation of Summaries}, author={Lin, Chin-Yew},
  booktitle={Text Summarization Branches Out}, year={2004}}
@article{luong17, title={Neural Machine Translation (seq2seq) Tutorial},
  author={Luong, Minh-Thang and Brevdo, Eugene and Zhao, Rui}, journal={https://github.com/tensorflow/nmt},
  year={2017}}"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of token lists, one per output.
    references: list of token lists, one reference per output.
Returns:
    rouge_1, rouge_2, rouge_l: mean sentence F x100.
Examples:
    >>> m = evaluate.load("qilin_lib/evaluation/metrics/nmt_rouge")
    >>> round(m.compute(predictions=[list("头痛发热")], references=[list("发热头痛")])["rouge_1"], 4)
    100.0
"""

@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NmtRouge(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "tokens",
                           "https://github.com/tensorflow/nmt/blob/master/nmt/scripts/rouge.py")

    def _compute(self, predictions, references) -> dict:
        return nmt_rouge(predictions, references)
