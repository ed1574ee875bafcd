"""`evaluate` module: BLEU-1..4 exactly as tensorflow/nmt `compute_bleu` (CMExam's BLEU), on token lists.

Protocol (DESIGN.md section 4): corpus-level clipped n-gram precisions, geometric mean over orders 1..n,
brevity penalty against the shortest reference, no smoothing, x100. The math lives in
`qilin_lib.evaluation.metrics.text_overlap` so it is testable without `evaluate`.
"""

import evaluate

from qilin_lib.evaluation.metrics.template import metric_info
from qilin_lib.evaluation.metrics.text_overlap import nmt_bleu

_DESCRIPTION = """BLEU-1..4 as tensorflow/nmt's compute_bleu with smooth=False (the code the CMExam benchmark
scripts call): corpus-level clipped n-gram precisions, their geometric mean over orders 1..n, the brevity
penalty exp(1 - r/c) when the output is shorter than the references (r = sum of each row's shortest reference
length), no smoothing (a zero precision gives 0), reported x100. Inputs are token lists: the caller tokenises
(characters or jieba words)."""

_CITATION = """@inproceedings{papineni2002bleu,
  title={Bleu: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={ACL}, year={2002}}
@article{luong17, title={Neural Machine Translation (seq2seq) Tutorial},
  author={Luong, Minh-Thang and Brevdo, Eugene and Zhao, Rui}, journal={https://github.com/tensorflow/nmt},
  year={2017}}"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of token lists, one per output.
    references: list of lists of token lists: the references of each output (at least one).
    max_order: highest BLEU order returned (default 4).
Returns:
    bleu_1 ... bleu_<max_order>: BLEU-n x100; brevity_penalty: the corpus brevity penalty in [0, 1].
Examples:
    >>> m = evaluate.load("qilin_lib/evaluation/metrics/nmt_bleu")
    >>> round(m.compute(predictions=[list("高血压病")], references=[[list("高血压病人")]])["bleu_1"], 4)
    77.8801
"""

@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NmtBleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "tokens, several references",
                           "https://github.com/tensorflow/nmt/blob/master/nmt/scripts/bleu.py")

    def _compute(self, predictions, references, max_order: int = 4) -> dict:
        return nmt_bleu(predictions, references, max_order=max_order)
