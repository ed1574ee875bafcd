"""Generation metrics as the benchmarks' own code computes them (DESIGN.md section 4), on token lists.

- BLEU-n: tensorflow/nmt `nmt/scripts/bleu.py::compute_bleu`, which the CMExam scripts call (through the
  PETER `bleu_score` wrapper) with `smooth=False`.
- ROUGE-1/2/L: tensorflow/nmt `nmt/scripts/rouge.py::rouge` (n-gram *sets*, sentence-level LCS with
  beta = P/R), also what CMExam calls.
- GLEU: nltk `corpus_gleu` with n-grams 1..4 (Wu et al. 2016, the Huatuo-26M table's GLEU).
- Distinct-n: distinct n-grams / all n-grams per output, averaged over outputs (Li et al. 2016); this is the
  scale of Huatuo-26M's published 0.51 / 0.68.

Inputs are already tokenised (see `tokens.py`); BLEU, ROUGE and GLEU are returned x100, Distinct as a fraction
(the published scale). Every function rejects an empty corpus: nmt would divide by zero or average nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from nltk.translate.gleu_score import corpus_gleu

Tokens = Sequence[str]


def _require_rows(predictions: Sequence, references: Sequence | None = None) -> None:
    if not predictions:
        raise ValueError("no predictions to score")
    if references is not None and len(references) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")


def _ngram_counts(tokens: Tokens, n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def nmt_bleu(predictions: Sequence[Tokens], references: Sequence[Sequence[Tokens]], max_order: int = 4) -> dict:
    """BLEU-1..`max_order` (keys `bleu_1`...) x100, plus the corpus `brevity_penalty`, as nmt `compute_bleu`.

    `references[i]` is the list of references of `predictions[i]`. Per order, clipped matches (each n-gram's
    count capped by its largest count in any one reference) and possible matches are summed over the corpus;
    an output shorter than n adds nothing to the order-n denominator (nltk adds 1: the only way the two
    differ on one reference). BLEU-n is the geometric mean of orders 1..n times the brevity penalty
    exp(1 - r/c) for c <= r, with r the sum of each row's *shortest* reference length. No smoothing: a zero
    precision makes BLEU-n exactly 0. BLEU-n equals nmt's `compute_bleu(..., max_order=n)` because nmt's
    per-order counts do not depend on `max_order`, so one pass serves every n.
    """
    _require_rows(predictions, references)
    matches = [0] * max_order
    possible = [0] * max_order
    reference_length = translation_length = 0
    for refs, hyp in zip(references, predictions):
        if not refs:
            raise ValueError("every prediction needs at least one reference")
        reference_length += min(len(r) for r in refs)
        translation_length += len(hyp)
        for n in range(1, max_order + 1):
            merged = Counter()
            for ref in refs:
                merged |= _ngram_counts(ref, n)  # Counter union = elementwise max, nmt's clipping
            matches[n - 1] += sum((_ngram_counts(hyp, n) & merged).values())
            possible[n - 1] += max(len(hyp) - n + 1, 0)

    precisions = [m / p if p > 0 else 0.0 for m, p in zip(matches, possible)]
    # nmt: bp = 1 when c > r, else exp(1 - r/c); it divides by zero on an all-empty corpus, where every
    # precision is 0 anyway, so that case is given bp 0 instead of a crash.
    if translation_length > reference_length:
        brevity_penalty = 1.0
    elif translation_length > 0:
        brevity_penalty = math.exp(1 - reference_length / translation_length)
    else:
        brevity_penalty = 0.0
    scores: dict = {}
    for n in range(1, max_order + 1):
        first_n = precisions[:n]
        geo_mean = math.exp(sum(math.log(p) for p in first_n) / n) if min(first_n) > 0 else 0.0
        scores[f"bleu_{n}"] = 100 * geo_mean * brevity_penalty
    scores["brevity_penalty"] = brevity_penalty
    return scores


def _nmt_words(tokens: Tokens) -> list[str]:
    """The words nmt's rouge sees for this token list.

    nmt gets a sentence string and splits it on " ", so an empty sentence is the one word "" ("".split(" ")
    == [""]), never zero words; reproducing that keeps nmt's scores for empty outputs (0 against any
    non-empty reference) and avoids the division by zero an empty list would cause in its ROUGE-L.
    """
    return list(tokens) or [""]


def _rouge_n_f(hyp: list[str], ref: list[str], n: int) -> float:
    """nmt `rouge_n([hyp], [ref], n)[0]`: F of n-gram *sets*, so a repeated n-gram is counted once."""
    hyp_set, ref_set = set(_ngram_counts(hyp, n)), set(_ngram_counts(ref, n))
    overlap = len(hyp_set & ref_set)
    # nmt's edge case ("not mathematically correct, but good enough"): an empty set gives P or R = 0.
    precision = overlap / len(hyp_set) if hyp_set else 0.0
    recall = overlap / len(ref_set) if ref_set else 0.0
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of `a` and `b`.

    Bit-parallel (Hyyro 2004) over Python ints instead of nmt's O(len(a) * len(b)) table: same value, but
    6,000 Huatuo answers of a few hundred characters take seconds instead of minutes.
    """
    if not a or not b:
        return 0
    positions: dict[str, int] = {}
    for i, token in enumerate(a):
        positions[token] = positions.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full  # a 0 bit at i marks a position of `a` where the LCS grew
    for token in b:
        matched = row & positions.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(a) - row.bit_count()


def _rouge_l_f(hyp: list[str], ref: list[str]) -> float:
    """nmt `rouge_l_sentence_level([hyp], [ref])[0]`: LCS F with beta = P_lcs / R_lcs (not rouge-score's 1)."""
    lcs = lcs_length(hyp, ref)
    r_lcs = lcs / len(ref)
    p_lcs = lcs / len(hyp)
    beta = p_lcs / (r_lcs + 1e-12)
    num = (1 + beta**2) * r_lcs * p_lcs
    denom = r_lcs + (beta**2) * p_lcs
    return num / (denom + 1e-12)


def nmt_rouge(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> dict:
    """ROUGE-1/2/L F (keys `rouge_1`, `rouge_2`, `rouge_l`) x100, each averaged over sentences, as nmt `rouge`.

    One reference per prediction (nmt's `rouge` takes one). Scores equal nmt's on `" ".join(tokens)` for
    tokens without spaces (the characters/jieba words of `tokens.py`).
    """
    _require_rows(predictions, references)
    pairs = [(_nmt_words(h), _nmt_words(r)) for h, r in zip(predictions, references)]
    return {
        "rouge_1": 100 * sum(_rouge_n_f(h, r, 1) for h, r in pairs) / len(pairs),
        "rouge_2": 100 * sum(_rouge_n_f(h, r, 2) for h, r in pairs) / len(pairs),
        "rouge_l": 100 * sum(_rouge_l_f(h, r) for h, r in pairs) / len(pairs),
    }


def gleu(predictions: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> dict:
    """Corpus GLEU (key `gleu`) x100: nltk `corpus_gleu(references, predictions, min_len=1, max_len=4)`."""
    _require_rows(predictions, references)
    hyps = [list(h) for h in predictions]
    refs = [[list(r) for r in rs] for rs in references]
    return {"gleu": 100 * corpus_gleu(refs, hyps, min_len=1, max_len=4)}


def distinct(predictions: Sequence[Tokens], orders: Sequence[int] = (1, 2)) -> dict:
    """Distinct-n (keys `distinct_<n>`) as a fraction: per output distinct/all n-grams, averaged over outputs.

    An output with no n-gram of order n (empty, or shorter than n) counts as 0 rather than being skipped, so
    every order averages over the same outputs and a model that answers nothing cannot look diverse.
    """
    _require_rows(predictions)
    scores = {}
    for n in orders:
        per_output = []
        for tokens in predictions:
            counts = _ngram_counts(tokens, n)
            total = sum(counts.values())
            per_output.append(len(counts) / total if total else 0.0)
        scores[f"distinct_{n}"] = sum(per_output) / len(per_output)
    return scores
