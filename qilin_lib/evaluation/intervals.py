"""95% intervals for every evaluation metric (issue 13): one item is 1.1 points of a 90-item C-Eval set, so a
point estimate alone says little.

    spec = IntervalSpec(resamples=1000, seed=0)
    accuracy_interval([True, False, True])               # [lo, hi] x100, Wilson
    f1_interval(golds, preds, "weighted", spec)          # [lo, hi] x100, percentile bootstrap over items
    paired_difference(correct_a, correct_b, spec)        # [lo, hi] of mean(a) - mean(b), items shared

Methods (stored in every result's `protocol.intervals`):
- **Accuracy** (a proportion of items, and the held-out DPO preference accuracy): the Wilson score interval,
  analytic. lm-eval's `mean_stderr` is the normal approximation p +- 1.96 sqrt(p(1-p)/n), which collapses to
  [0, 0] at 0% or 100% (tiny's generate accuracy is 0.0: the normal interval would claim certainty) and
  runs below 0 / above 100 near the ends with small n; Wilson stays inside [0, 100] and keeps a width
  there (3 of 3 correct: [43.8, 100]), and it is the interval recommended for small n (Brown, Cai and
  DasGupta 2001).
- **Corpus-level metrics** (weighted / macro F1, BLEU-n, GLEU, ROUGE-1/2/L, Distinct-n): percentile
  bootstrap over items, `resamples` resamples drawn with numpy's PCG64 from `seed`. A resample is a row of
  item counts (weights: how often each item is among n indices drawn with replacement), and every metric is recomputed from per-item sufficient statistics
  weighted by those counts (BLEU: clipped matches, possible n-grams and lengths per order; GLEU: nltk's
  matched / all n-grams per sentence; ROUGE and Distinct: the per-sentence scores they average; F1: the
  confusion counts per label), so 1,000 resamples cost one matrix product rather than 1,000 metric calls;
  `tests/test_intervals.py` checks that unit weights reproduce each metric exactly.
- **Differences** (knowledge-injection tables): the same bootstrap on the difference of two accuracies:
  paired (one resample of the shared items for both models: stage vs base) or stratified (each group
  resampled on its own: taught vs control, which are different items). A difference is marked when its
  interval excludes 0.

The same seed draws the same resamples for every metric with the same number of items, so intervals are
reproducible and two models' bootstrap distributions on the same items are paired. Empty input and NaN
are errors, never a silent [nan, nan]. Bounds are in the metric's own units (x100 for percentages, a
fraction for Distinct) and in the result JSON sit beside the metric as `<metric>_ci95: [lo, hi]`.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .metrics.labels import NO_ANSWER
from .metrics.text_overlap import _ngram_counts, _nmt_words, _rouge_l_f, _rouge_n_f

LEVEL = 0.95
Z = 1.959963984540054        # the standard normal's 97.5% quantile
SUFFIX = "_ci95"             # JSON: "accuracy": 24.4, "accuracy_ci95": [19.6, 29.5]


@dataclass(frozen=True)
class IntervalSpec:
    """How the bootstrap intervals are drawn (config: evaluation.bootstrap_resamples / interval_seed)."""
    resamples: int = 1000
    seed: int = 0

    @classmethod
    def from_config(cls, cfg) -> IntervalSpec:
        return cls(resamples=cfg.evaluation.bootstrap_resamples, seed=cfg.evaluation.interval_seed)

    def protocol(self) -> dict:
        return {"level": LEVEL, "json_key": f"<metric>{SUFFIX}",
                "accuracy": "Wilson score interval (analytic)",
                "corpus_metrics": "percentile bootstrap over items (F1, BLEU, GLEU, ROUGE, Distinct)",
                "differences": "percentile bootstrap of the difference: paired on shared items, "
                               "stratified across groups",
                "resamples": self.resamples, "seed": self.seed}


DEFAULT_SPEC = IntervalSpec()


# ------------------------------------------------------------------------------------- analytic
def wilson(successes: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a proportion successes / n, as fractions."""
    if n <= 0:
        raise ValueError("an interval needs at least one item")
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n} items")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(correct: Sequence[bool]) -> list[float]:
    """[lo, hi] x100 of the share of correct items (Wilson)."""
    lo, hi = wilson(sum(bool(c) for c in correct), len(correct))
    return [100 * lo, 100 * hi]


# ------------------------------------------------------------------------------------ bootstrap
def resample_weights(n: int, spec: IntervalSpec) -> np.ndarray:
    """(resamples, n) item counts of `spec.resamples` bootstrap resamples of n items (rows sum to n): row r
    counts how often each item is among n indices drawn uniformly with replacement. Read-only and cached:
    every metric block of a result with the same number of items reuses one draw."""
    if n <= 0:
        raise ValueError("an interval needs at least one item")
    return _weights(n, spec.resamples, spec.seed)


@functools.lru_cache(maxsize=8)
def _weights(n: int, resamples: int, seed: int) -> np.ndarray:
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = (draws + n * np.arange(resamples)[:, None]).ravel()  # one bincount for all rows at once
    weights = np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(np.float64)
    weights.flags.writeable = False
    return weights


def percentile_interval(stats: np.ndarray, what: str = "metric") -> list[float]:
    """The central 95% of bootstrap statistics; a NaN statistic is an error naming `what`."""
    stats = np.asarray(stats, dtype=np.float64)
    if stats.size == 0 or np.isnan(stats).any():
        raise ValueError(f"bootstrap of {what}: NaN or no statistics")
    lo, hi = np.percentile(stats, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return [float(lo), float(hi)]


def bootstrap(stat: Callable[[np.ndarray], np.ndarray], n: int, spec: IntervalSpec, what: str = "metric") -> list[float]:
    """Percentile interval of stat(weights) (weights: (resamples, n) -> (resamples,) statistics)."""
    return percentile_interval(stat(resample_weights(n, spec)), what)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (a resample without any of the counted things scores 0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _check_values(values: np.ndarray, what: str) -> np.ndarray:
    if values.size == 0:
        raise ValueError(f"{what}: no items")
    if np.isnan(values).any():
        raise ValueError(f"{what}: NaN among the per-item values")
    return values


# ------------------------------------------------------------------------------------------- F1
def _f1_from_weights(golds: Sequence[str], preds: Sequence[str], weights: np.ndarray, average: str,
                     labels: Sequence[str] | None) -> np.ndarray:
    """sklearn's weighted / macro F1 (zero_division=0) for every row of item weights at once.

    Per label: F1 = 2 tp / (support + predicted), 0 when both are 0; weighted = support-weighted mean over
    every label that occurs (a label only predicted has support 0 and adds nothing); macro = plain mean
    over the fixed `labels`, or without `labels` over the labels a resample holds as gold or prediction
    (sklearn's `labels=None`, which PubMedQA's evaluation.py @3e7616d uses)."""
    classes = list(labels) if labels is not None else sorted(set(golds) | set(preds))
    index = {c: i for i, c in enumerate(classes)}
    gold_onehot = np.zeros((len(golds), len(classes)))
    pred_onehot = np.zeros((len(golds), len(classes)))
    for row, (g, p) in enumerate(zip(golds, preds)):
        gold_onehot[row, index[g]] = 1
        if p in index:  # a prediction outside fixed labels counts as wrong and belongs to no label
            pred_onehot[row, index[p]] = 1
    c = len(classes)
    counts = weights @ np.hstack([gold_onehot, pred_onehot, gold_onehot * pred_onehot])  # one product, not three
    support, predicted, tp = counts[:, :c], counts[:, c:2 * c], counts[:, 2 * c:]
    f1 = _ratio(2 * tp, support + predicted)
    if average == "macro" and labels is not None:
        return 100 * f1.mean(axis=1)
    if average == "macro":
        present = (support + predicted) > 0
        return 100 * _ratio(f1.sum(axis=1), present.sum(axis=1).astype(np.float64))
    return 100 * _ratio((f1 * support).sum(axis=1), support.sum(axis=1))


def f1_interval(golds: Sequence[str], preds: Sequence[str | None], average: str, spec: IntervalSpec,
                labels: Sequence[str] | None = None) -> list[float]:
    """[lo, hi] x100 of weighted F1 (CMExam: answer strings as labels, no answer = NO_ANSWER) or macro F1
    (PubMedQA: over fixed `labels`, or over the labels present with no answer one more label), bootstrapped
    over items."""
    if average not in ("weighted", "macro"):
        raise ValueError(f"unknown F1 average {average!r}")
    if not golds:
        raise ValueError(f"{average} F1 interval: no items")
    cleaned = [p or ("" if labels is not None else NO_ANSWER) for p in preds]
    return bootstrap(lambda w: _f1_from_weights(golds, cleaned, w, average, labels), len(golds), spec,
                     f"{average} F1")


def f1_full_sample(golds: Sequence[str], preds: Sequence[str | None], average: str,
                   labels: Sequence[str] | None = None) -> float:
    """The F1 `_f1_from_weights` computes with every item once (tests compare it with sklearn's)."""
    cleaned = [p or ("" if labels is not None else NO_ANSWER) for p in preds]
    return float(_f1_from_weights(golds, cleaned, np.ones((1, len(golds))), average, labels)[0])


# ----------------------------------------------------------------------------- text overlap
def _bleu_stats(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]], max_order: int = 4) -> np.ndarray:
    """Per item: clipped matches (max_order), possible n-grams (max_order), hypothesis and reference
    length: what nmt `compute_bleu` sums over the corpus (one reference per item)."""
    stats = np.zeros((len(hyps), 2 * max_order + 2))
    for i, (hyp, ref) in enumerate(zip(hyps, refs)):
        for n in range(1, max_order + 1):
            stats[i, n - 1] = sum((_ngram_counts(hyp, n) & _ngram_counts(ref, n)).values())
            stats[i, max_order + n - 1] = max(len(hyp) - n + 1, 0)
        stats[i, -2], stats[i, -1] = len(hyp), len(ref)
    return stats


def _bleu_from_stats(summed: np.ndarray, orders: Sequence[int], max_order: int = 4) -> dict[int, np.ndarray]:
    """BLEU-n x100 per resample from summed `_bleu_stats` (nmt: no smoothing, brevity penalty)."""
    precisions = _ratio(summed[:, :max_order], summed[:, max_order:2 * max_order])
    hyp_len, ref_len = summed[:, -2], summed[:, -1]
    with np.errstate(divide="ignore"):
        bp = np.where(hyp_len > ref_len, 1.0,
                      np.where(hyp_len > 0, np.exp(1 - ref_len / np.maximum(hyp_len, 1e-300)), 0.0))
        logs = np.log(precisions)
    out = {}
    for n in orders:
        first = precisions[:, :n]
        geo = np.where(first.min(axis=1) > 0, np.exp(np.where(first > 0, logs[:, :n], 0).sum(axis=1) / n), 0.0)
        out[n] = 100 * geo * bp
    return out


def _everygram_counts(tokens: Sequence[str], max_len: int = 4) -> Counter:
    return sum((_ngram_counts(tokens, n) for n in range(1, max_len + 1)), Counter())


def _gleu_stats(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]]) -> np.ndarray:
    """Per item: nltk `corpus_gleu`'s matched and all n-grams (orders 1..4, one reference)."""
    stats = np.zeros((len(hyps), 2))
    for i, (hyp, ref) in enumerate(zip(hyps, refs)):
        h, r = _everygram_counts(hyp), _everygram_counts(ref)
        n_all = max(sum(h.values()), sum(r.values()))
        if n_all > 0:  # nltk skips a pair with no n-gram on either side
            stats[i] = (sum((h & r).values()), n_all)
    return stats


def _distinct_item(tokens: Sequence[str], n: int) -> float:
    counts = _ngram_counts(tokens, n)
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


def overlap_intervals(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]], spec: IntervalSpec,
                      keys: Sequence[str], rouge_tokens: tuple | None = None) -> dict[str, list[float]]:
    """`<key>_ci95` for each of `keys` among bleu_1..4, gleu, rouge_1/2/l, distinct_1/2, on token lists as
    `text_overlap` scores them; `rouge_tokens` = (hyps, refs) when ROUGE uses other tokens than BLEU
    (CMExam explanations: BLEU on jieba words, ROUGE on characters)."""
    if not hyps or len(hyps) != len(refs):
        raise ValueError(f"overlap intervals: {len(hyps)} predictions, {len(refs)} references")
    weights = resample_weights(len(hyps), spec)
    per_item_mean = {}  # key -> per-item values averaged over items (ROUGE, Distinct)
    r_hyps, r_refs = rouge_tokens or (hyps, refs)
    pairs = [(_nmt_words(h), _nmt_words(r)) for h, r in zip(r_hyps, r_refs)]
    for key in keys:
        if key in ("rouge_1", "rouge_2"):
            per_item_mean[key] = [100 * _rouge_n_f(h, r, int(key[-1])) for h, r in pairs]
        elif key == "rouge_l":
            per_item_mean[key] = [100 * _rouge_l_f(h, r) for h, r in pairs]
        elif key.startswith("distinct_"):
            per_item_mean[key] = [_distinct_item(h, int(key[-1])) for h in hyps]
    stats: dict[str, np.ndarray] = {}
    for key, values in per_item_mean.items():
        values = _check_values(np.asarray(values, dtype=np.float64), key)
        stats[key] = weights @ values / len(values)
    bleu_orders = [int(k[-1]) for k in keys if k.startswith("bleu_")]
    if bleu_orders:
        bleu = _bleu_from_stats(weights @ _bleu_stats(hyps, refs), bleu_orders)
        stats |= {f"bleu_{n}": v for n, v in bleu.items()}
    if "gleu" in keys:
        g = weights @ _gleu_stats(hyps, refs)
        stats["gleu"] = 100 * _ratio(g[:, 0], g[:, 1])
    missing = set(keys) - set(stats)
    if missing:
        raise ValueError(f"no interval method for {sorted(missing)}")
    return {f"{key}{SUFFIX}": percentile_interval(stats[key], key) for key in keys}


# ---------------------------------------------------------------------------------- perplexity
def perplexity_interval(nll_sums: Sequence[float], token_counts: Sequence[int], spec: IntervalSpec) -> list[float]:
    """[lo, hi] of exp(sum NLL / sum tokens) over texts, bootstrapped over texts (each text's summed NLL
    and token count are its sufficient statistics). Not wired yet: the held-out probe perplexity
    (train/dcpt.py `perplexity`) keeps only the corpus sums, so eval_*_heldout.json has no interval."""
    nll = _check_values(np.asarray(nll_sums, dtype=np.float64), "perplexity NLL")
    tokens = np.asarray(token_counts, dtype=np.float64)
    if len(tokens) != len(nll) or not tokens.sum():
        raise ValueError("perplexity interval: one token count per text, and some tokens")
    weights = resample_weights(len(nll), spec)
    total = weights @ tokens
    if (total == 0).any():
        raise ValueError("perplexity interval: a resample without tokens (texts with 0 tokens dominate)")
    return percentile_interval(np.exp((weights @ nll) / total), "perplexity")


# ---------------------------------------------------------------------------------- differences
def paired_difference(a: Sequence[float], b: Sequence[float], spec: IntervalSpec) -> list[float]:
    """[lo, hi] of mean(a) - mean(b) x100 over the same items (a[i] and b[i] are one item: one resample
    serves both), e.g. a stage's and the base model's correctness."""
    if len(a) != len(b):
        raise ValueError(f"paired difference: {len(a)} vs {len(b)} items")
    d = _check_values(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), "paired difference")
    return bootstrap(lambda w: 100 * (w @ d) / len(d), len(d), spec, "paired difference")


def independent_difference(a: Sequence[float], b: Sequence[float], spec: IntervalSpec) -> list[float]:
    """[lo, hi] of mean(a) - mean(b) x100 for different items (taught vs control): each side resampled on
    its own (a stratified bootstrap; the second side draws from the seed + 1 stream)."""
    x = _check_values(np.asarray(a, dtype=np.float64), "difference (first group)")
    y = _check_values(np.asarray(b, dtype=np.float64), "difference (second group)")
    mx = resample_weights(len(x), spec) @ x / len(x)
    my = resample_weights(len(y), IntervalSpec(spec.resamples, spec.seed + 1)) @ y / len(y)
    return percentile_interval(100 * (mx - my), "independent difference")


def excludes_zero(interval: Sequence[float]) -> bool:
    return interval[0] > 0 or interval[1] < 0
