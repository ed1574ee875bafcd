"""`evaluate` module: corpus GLEU as nltk `corpus_gleu` (n-grams 1..4), x100, on token lists.

Protocol (DESIGN.md section 4): the GLEU column of the Huatuo-26M table; nltk's implementation of Wu et al.
(2016). The call lives in `qilin_lib.evaluation.metrics.text_overlap`.
"""

import evaluate

from qilin_lib.evaluation.metrics.template import metric_info
from qilin_lib.evaluation.metrics.text_overlap import gleu

_DESCRIPTION = """Corpus-level GLEU (Google-BLEU, Wu et al. 2016) as nltk.translate.gleu_score.corpus_gleu with
min_len=1 and max_len=4: per output, n-gram matches and max(output n-grams, reference n-grams) with the best
reference, summed over the corpus; reported x100. Inputs are token lists."""

_CITATION = """@article{wu2016google,
  title={Google's Neural Machine Translation System: Bridging the Gap between Human and Machine Translation},
  author={Wu, Yonghui and Schuster, Mike and Chen, Zhifeng and others}, journal={arXiv:1609.08144},
  year={2016}}"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of token lists, one per output.
    references: list of lists of token lists: the references of each output.
Returns:
    gleu: corpus GLEU x100.
Examples:
    >>> m = evaluate.load("qilin_lib/evaluation/metrics/gleu")
    >>> m.compute(predictions=[list("多喝水")], references=[[list("多喝水")]])["gleu"]
    100.0
"""

@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Gleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "tokens, several references",
                           "https://www.nltk.org/api/nltk.translate.gleu_score.html")

    def _compute(self, predictions, references) -> dict:
        return gleu(predictions, references)
