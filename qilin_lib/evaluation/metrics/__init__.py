"""Benchmark metrics as local `evaluate` modules (DESIGN.md section 4), and the calls the benchmarks make.

Hub metrics (`evaluate.load("bleu")`) cannot load offline and do not compute what the benchmarks' own code
computes, so every metric is a module directory beside this file (`nmt_bleu/nmt_bleu.py`, ...), loaded by
path with `load_metric`. The math is in plain functions (`text_overlap`, `labels`) that the modules import.

- `generation_scores`: the Huatuo-26M columns (BLEU-1..4, GLEU, ROUGE-1/2/L, Distinct-1/2), characters by default.
- `explanation_scores`: CMExam explanations (BLEU-1/4 on jieba words, ROUGE-1/2/L on characters).
- `mcq_scores`: CMExam answer accuracy and weighted F1.
- `label_scores`: PubMedQA accuracy, macro-F1 as its evaluation.py computes it, and macro-F1 over yes/no/maybe.

Nothing is rounded here: tables round.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qilin_lib.evaluation.metrics.tokens import char_tokens, jieba_tokens

if TYPE_CHECKING:  # `evaluate` imports torch and the hub client: loaded with the first metric, not with a config
    import evaluate

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("nmt_bleu", "nmt_rouge", "gleu", "distinct", "mcq_answer", "pubmedqa_label")
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"char": char_tokens, "jieba": jieba_tokens}

__all__ = [
    "METRIC_NAMES", "TOKENIZERS", "char_tokens", "explanation_scores", "generation_scores", "jieba_tokens",
    "label_scores", "load_metric", "mcq_scores",
]


@functools.cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """The local `evaluate` module `name` (one of METRIC_NAMES), loaded once per process.

    Loading by directory path never touches the Hub, so it works with HF_HUB_OFFLINE=1; keep_in_memory skips
    the Arrow cache files and their locks under ~/.cache, which nothing here reuses.
    """
    import evaluate

    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; expected one of {METRIC_NAMES}")
    return evaluate.load(str(METRICS_DIR / name), keep_in_memory=True)


def _tokenize(texts: Sequence[str], tokenizer: str) -> list[list[str]]:
    try:
        split = TOKENIZERS[tokenizer]
    except KeyError:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {sorted(TOKENIZERS)}") from None
    return [split(text) for text in texts]


def generation_scores(predictions: Sequence[str], references: Sequence[str], tokenizer: str = "char") -> dict:
    """Huatuo-26M columns: bleu_1..bleu_4, gleu, rouge_1, rouge_2, rouge_l (x100), distinct_1, distinct_2 (0-1).

    One reference per prediction; everything on the same tokens ("char": Huatuo's tokenisation is
    undocumented, DESIGN.md says characters).
    """
    hyps, refs = _tokenize(predictions, tokenizer), _tokenize(references, tokenizer)
    multi_refs = [[ref] for ref in refs]
    bleu = load_metric("nmt_bleu").compute(predictions=hyps, references=multi_refs)
    return {
        **{f"bleu_{n}": bleu[f"bleu_{n}"] for n in range(1, 5)},
        **load_metric("gleu").compute(predictions=hyps, references=multi_refs),
        **load_metric("nmt_rouge").compute(predictions=hyps, references=refs),
        **load_metric("distinct").compute(predictions=hyps),
    }


def explanation_scores(predictions: Sequence[str], references: Sequence[str]) -> dict:
    """CMExam explanations: bleu_1, bleu_4 on jieba words; rouge_1, rouge_2, rouge_l on characters (all x100)."""
    bleu = load_metric("nmt_bleu").compute(
        predictions=_tokenize(predictions, "jieba"), references=[[ref] for ref in _tokenize(references, "jieba")]
    )
    rouge = load_metric("nmt_rouge").compute(
        predictions=_tokenize(predictions, "char"), references=_tokenize(references, "char")
    )
    return {"bleu_1": bleu["bleu_1"], "bleu_4": bleu["bleu_4"], **rouge}


def mcq_scores(golds: Sequence[str], preds: Sequence[str | None]) -> dict:
    """CMExam answers: accuracy and weighted_f1 (x100); an empty or None prediction is "no answer" and wrong."""
    return load_metric("mcq_answer").compute(predictions=list(preds), references=list(golds))


def label_scores(
    golds: Sequence[str], preds: Sequence[str | None], labels: Sequence[str] = ("yes", "no", "maybe")
) -> dict:
    """PubMedQA-style labels (x100): accuracy, macro_f1 as PubMedQA's evaluation.py computes it (over the labels
    present; an unparsed "" or None is one extra label) and macro_f1_fixed_labels (over exactly `labels`)."""
    return load_metric("pubmedqa_label").compute(
        predictions=list(preds), references=list(golds), labels=tuple(labels)
    )
