"""Deduplication of text records following Lee et al. 2022 ("Deduplicating Training Data Makes Language
Models Better"), as Qilin-Med did for ChiMed.

Two stages, applied in one streaming pass that keeps the first occurrence of every duplicate group:

1. Exact duplicates: documents whose *normalised* text is identical (compared by a 128-bit BLAKE2b hash).
   `normalize_text` applies, in this order: Unicode NFKC (full-width ASCII letters, digits and
   punctuation become half-width, the ideographic space becomes a space, compatibility characters such
   as "℃", "㎎", "Ⅱ", "①" are unfolded); a mapping of the CJK punctuation that NFKC leaves alone to ASCII
   (`。、“”‘’「」『』【】〔〕〖〗《》〈〉～〜—–―…·・` and a few more, see `_PUNCT`); case folding; every run
   of whitespace (spaces, tabs, newlines, ideographic spaces) collapsed to one space, and leading and
   trailing whitespace removed. `normalize_batch` computes the same thing vectorised.
2. Near duplicates (documents of at least `min_chars` normalised characters; shorter ones are only
   exact-deduplicated): MinHash over character `ngram`-grams (5) of the normalised text, LSH banding for
   candidate pairs, and verification of each candidate pair on compact sketches (all three must pass):
   - estimated n-gram Jaccard >= `verify_threshold`. Edits destroy up to `ngram` shingles each: a copy
     with 15% random substitutions has a 5-gram Jaccard of only ~0.28, so both the banding threshold
     (`lsh_threshold` 0.1: 64 bands x 2 rows) and this threshold (0.15) sit far below the 0.8 often
     quoted;
   - order: the Jaccard of n-grams tagged with their relative position in the text (`order_sketch`)
     >= `order_ratio` x the n-gram Jaccard. Sparse edits barely move n-grams, so edited copies keep
     85-100% of their n-gram Jaccard here; restatements that reorder the same sentences keep ~1/8;
   - estimated character-multiset Jaccard >= `char_threshold` (`char_multiset_sketch`). Lee et al.
     verify MinHash candidates with an edit similarity (EditSim > 0.8); we cannot keep the texts
     (memory must not grow with them), but d edits change at most d characters of the multiset each
     way, so EditSim >= s implies multiset Jaccard >= s / (2 - s). The test rejects documents that
     share a template (boilerplate answers, exam option lists, knowledge-graph field templates) but
     differ in content, whose 5-gram Jaccard can equal that of a 15%-edited copy.
   On real medical text (benchmarks/bench_dedup.py) about 80% of the pairs this removes have
   EditSim >= 0.8 and 96% >= 0.7; planted 5-15%-edited copies are found with recall > 0.99.

A document is compared only with documents that were *kept*, so a removed document never pulls in a
third one (no chaining). Memory grows with the number of kept documents, never with their text: per
kept long document a stored row (16-bit MinHash signature + two 128-bin sketches, 768 B) and one LSH
entry per band (64 x 12 B); per distinct text an exact-hash entry (~80 B); about 1.7 KB per document
with the defaults. The input is consumed in batches bounded by a document count and a character count,
and only hashes survive a batch. Results are deterministic given `seed`.

Public API:
    dedup_records(records, text_key="text", config=None, progress=True) -> (kept records, DedupReport)
    iter_dedup_records(...)                  the same as a generator (the report fills as it goes)
    dedup_stream(texts, config=None)         -> iterator of Decision (index, keep, reason, dup_of, ...)
    Deduplicator                             the stateful engine behind all three (batch API)
    MinHasher, LSHIndex, optimal_param       the vectorised MinHash and the banded index
    order_sketch, char_multiset_sketch, oph_sketch, sketch_jaccard   the verification sketches
    normalize_text, normalize_batch, exact_hash, shingles   helpers (shingles: pure-Python reference)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ..config import DedupConfig

__all__ = [
    "normalize_text", "normalize_batch", "exact_hash", "shingles", "MinHasher", "LSHIndex",
    "optimal_param", "oph_sketch", "char_multiset_sketch", "order_sketch", "sketch_jaccard",
    "Decision", "SourceCounts", "DedupReport", "Deduplicator", "dedup_stream", "dedup_records",
    "iter_dedup_records", "NORMALIZATION",
]

# ------------------------------------------------------------------------------------ normalisation
# CJK punctuation that NFKC keeps as is (full-width *ASCII* forms U+FF01-FF5E are already folded by NFKC).
_PUNCT = {
    "。": ".", "｡": ".", "、": ",", "､": ",", "“": '"', "”": '"', "„": '"', "‘": "'", "’": "'",
    "「": '"', "」": '"', "『": '"', "』": '"', "【": "[", "】": "]", "〔": "(", "〕": ")",
    "〖": "[", "〗": "]", "《": "<", "》": ">", "〈": "<", "〉": ">", "～": "~", "〜": "~",
    "—": "-", "–": "-", "―": "-", "－": "-", "‐": "-", "‑": "-", "…": "...", "·": ".", "・": ".",
    "•": ".",
}
_PUNCT_TABLE = str.maketrans(_PUNCT)
_WS = re.compile(r"\s+")

NORMALIZATION = ("NFKC; CJK punctuation -> ASCII (" + "".join(_PUNCT) + "); casefold; "
                 "whitespace runs -> one space, stripped")


def normalize_text(text: str) -> str:
    """The text that duplicates are judged on (see the module docstring for what it folds).

    This is the reference definition; `normalize_batch` computes the same thing vectorised."""
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT_TABLE).casefold()
    return _WS.sub(" ", text).strip()


def exact_hash(normalized: str) -> bytes:
    """128-bit BLAKE2b digest of the normalised text (as UTF-32-LE): the key of the exact stage."""
    return hashlib.blake2b(normalized.encode("utf-32-le", "surrogatepass"), digest_size=16).digest()


_FAST: tuple[np.ndarray, np.ndarray] | None = None
_MAX_EXPANSION = 4


def _fast_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per-character tables for the Basic Multilingual Plane, built once (~0.5 s): what each character
    normalises to (up to 4 code points, e.g. "…" -> "...", "℃" -> "°c"), and an info byte: bit 0 "simple"
    (its normalisation does not depend on its neighbours), bit 1 whitespace, bits 2-4 how many code
    points it becomes.

    A character is not simple when NFKC + punctuation map + casefold gives 0 or more than 4 characters or
    a mix of whitespace and other characters, when it (or a character it maps to) is a combining mark, the
    second character of a canonical composition, or a Hangul jamo (jamo compose algorithmically). A text
    made only of simple characters normalises character by character, so the vectorised path equals
    `normalize_text`; other texts (and those with characters beyond U+FFFF) take the reference path.
    Tests check that the two agree on every BMP character in context."""
    global _FAST
    if _FAST is None:
        size = 0x10000
        table = np.zeros((size, _MAX_EXPANSION), dtype=np.uint32)
        table[:, 0] = np.arange(size, dtype=np.uint32)
        width = np.ones(size, dtype=np.int64)
        simple = np.zeros(size, dtype=bool)
        space = np.zeros(size, dtype=bool)
        second = set()            # second characters of canonical compositions (all such pairs are BMP)
        for c in range(size):
            dec = unicodedata.decomposition(chr(c))
            if dec and not dec.startswith("<"):
                parts = dec.split()
                if len(parts) == 2:
                    second.add(int(parts[1], 16))

        def jamo(c: int) -> bool:
            return (0x1100 <= c <= 0x11FF or 0x3130 <= c <= 0x318F or 0xA960 <= c <= 0xA97F
                    or 0xD7B0 <= c <= 0xD7FF or 0xFFA0 <= c <= 0xFFDC)

        for c in range(size):
            if 0xD800 <= c <= 0xDFFF:
                continue
            ch = chr(c)
            mapped = unicodedata.normalize("NFKC", ch).translate(_PUNCT_TABLE).casefold()
            if not 1 <= len(mapped) <= _MAX_EXPANSION or unicodedata.combining(ch) or c in second or jamo(c):
                continue
            if any(unicodedata.combining(m) or ord(m) in second or jamo(ord(m)) for m in mapped):
                continue
            spaces = sum(m.isspace() for m in mapped)
            if spaces and len(mapped) > 1:
                continue
            table[c, : len(mapped)] = [ord(m) for m in mapped]
            width[c] = len(mapped)
            simple[c] = True
            space[c] = spaces == 1
        info = (simple.astype(np.uint8) | (space.astype(np.uint8) << 1) | (width.astype(np.uint8) << 2))
        _FAST = (table, info)
    return _FAST


def normalize_batch(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Normalise many texts at once: (code points uint32 of all normalised texts concatenated, lengths).

    Same result as `normalize_text` on each text (texts with characters outside the vectorised tables,
    see `_fast_tables`, are normalised one by one with the reference function)."""
    table, info = _fast_tables()
    n = len(texts)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    raw = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if not len(raw):
        return np.empty(0, np.uint32), np.zeros(n, np.int64)
    nonempty = lengths > 0
    starts = (np.cumsum(lengths) - lengths)[nonempty]
    big = raw.max() > 0xFFFF
    low = np.minimum(raw, 0xFFFF) if big else raw
    inf = info[low]                                  # bit 0 simple, bit 1 whitespace, bits 2+ width
    hard = (inf & 1) == 0
    if big:
        hard |= raw > 0xFFFF
    fallback = np.zeros(n, dtype=bool)
    if hard.any():
        fallback[nonempty] = np.logical_or.reduceat(hard, starts)
    ws = (inf & 2) != 0
    prev_ws = np.empty(len(raw), dtype=bool)
    prev_ws[0] = True
    prev_ws[1:] = ws[:-1]
    prev_ws[starts] = True                           # leading whitespace is dropped
    keep = ~(ws & prev_ws)                           # first character of each whitespace run
    if fallback.any():
        keep &= ~np.repeat(fallback, lengths)
    out_len = np.zeros(n, dtype=np.int64)
    out_len[nonempty] = np.add.reduceat(keep, starts, dtype=np.int64)
    kept = low[keep]
    kinf = inf[keep]
    kws = (kinf & 2) != 0
    kept[kws] = 32                                   # every kept whitespace character becomes " "
    has = out_len > 0                                # a document ending in whitespace loses that space
    last = np.cumsum(out_len)[has] - 1
    trail = last[kws[last]]
    if len(trail):
        out_len[np.flatnonzero(has)[kws[last]]] -= 1
        mask = np.ones(len(kept), dtype=bool)
        mask[trail] = False
        kept, kinf = kept[mask], kinf[mask]
    out = table[kept, 0]
    wide = np.flatnonzero(kinf >= 8)                 # characters that expand to several
    if len(wide):
        extra = (kinf[wide] >> 2).astype(np.int64) - 1
        vals = table[kept[wide], 1:][np.arange(_MAX_EXPANSION - 1) < extra[:, None]]
        out = np.insert(out, np.repeat(wide + 1, extra), vals)
        docs = np.searchsorted(np.cumsum(out_len), wide, side="right")
        out_len += np.bincount(docs, weights=extra, minlength=n).astype(np.int64)
    if not fallback.any():
        return out, out_len
    pieces, cursor = [], 0
    bounds = np.concatenate(([0], np.cumsum(out_len)))
    for i in np.flatnonzero(fallback).tolist():
        pieces.append(out[cursor:bounds[i]])
        ref = normalize_text(texts[i])
        pieces.append(np.frombuffer(ref.encode("utf-32-le", "surrogatepass"), dtype=np.uint32))
        out_len[i] = len(ref)
        cursor = bounds[i]            # out has no characters for fallback documents
    pieces.append(out[cursor:])
    return np.concatenate(pieces), out_len


def shingles(normalized: str, n: int = 5) -> set[str]:
    """Character n-grams of a normalised text (pure Python; the reference for tests and the baseline)."""
    if len(normalized) < n:
        return {normalized} if normalized else set()
    return {normalized[i:i + n] for i in range(len(normalized) - n + 1)}


# ------------------------------------------------------------------------------------------- MinHash
_U64 = np.uint64
_MASK32 = _U64(32)
_SM_C1, _SM_C2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_POLY = _U64(0x100000001B3)      # multiplier of the polynomial n-gram hash (FNV-1a's 64-bit prime)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, in place on a uint64 array: turns the n-gram hash into uniform 64-bit keys."""
    x ^= x >> _U64(30)
    x *= _SM_C1
    x ^= x >> _U64(27)
    x *= _SM_C2
    x ^= x >> _U64(31)
    return x


class MinHasher:
    """Vectorised MinHash signatures of many documents at once (numpy, no Python loop per shingle).

    For a batch: the normalised texts are one code-point array (UTF-32) with document lengths; the
    `ngram`-gram at every position is hashed with a 64-bit polynomial hash computed with `ngram` vector
    operations, finalised with SplitMix64 and cut to its top 32 bits (n-grams crossing a document boundary
    are dropped). The `num_perm` hash functions are multiply-add hashes h_k(x) = (a_k x + b_k) mod 2^32
    (a_k odd, so each is a permutation of the 32-bit keys; the modulo is the uint32 wrap-around), applied
    to cache-sized chunks of 64k keys one function at a time and reduced per document with
    `np.minimum.reduceat` over document offsets. Measured on this machine: the chunked per-function loop
    runs 3-9x faster than one (chunk x num_perm) broadcast matrix, which leaves the cache, and uint32
    arithmetic is ~2x faster than uint64 multiply-shift with estimates of the same accuracy (the keys are
    already uniformly mixed; tests compare the estimates with true Jaccard and with datasketch).
    Signatures are uint32, shape (n_docs, num_perm); a document without n-grams gets all 0xFFFFFFFF.
    """

    def __init__(self, num_perm: int = 128, ngram: int = 5, seed: int = 1, chunk: int = 1 << 16):
        if num_perm < 1 or ngram < 1:
            raise ValueError("num_perm and ngram must be positive")
        self.num_perm, self.ngram, self.seed, self.chunk = num_perm, ngram, seed, chunk
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, 2**32 - 1, size=num_perm, dtype=np.uint32, endpoint=True) | np.uint32(1)
        self.b = rng.integers(0, 2**32 - 1, size=num_perm, dtype=np.uint32, endpoint=True)

    # -- n-gram keys
    def ngram_keys(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(keys, counts): uint32 keys of every n-gram of every text, concatenated, and the count per text,
        from the texts' code points concatenated (`codes`) and their lengths. Texts shorter than `ngram`
        have no n-gram (count 0)."""
        n = self.ngram
        lengths = np.asarray(lengths, dtype=np.int64)
        counts = np.maximum(lengths - n + 1, 0)
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, np.uint32), counts
        codes = np.asarray(codes).astype(np.uint64)
        m = len(codes) - n + 1
        h = codes[:m].copy()
        for j in range(1, n):
            h *= _POLY
            h += codes[j:j + m]
        # positions whose n-gram lies inside one document: start_d .. start_d + count_d - 1
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        keep = counts > 0
        pos = np.arange(total, dtype=np.int64)
        pos += np.repeat(starts[keep] - (np.cumsum(counts[keep]) - counts[keep]), counts[keep])
        return (_mix64(h[pos]) >> _MASK32).astype(np.uint32), counts

    # -- signatures
    def signatures(self, texts: Sequence[str], normalize: bool = False) -> np.ndarray:
        """MinHash signatures (uint32, shape (len(texts), num_perm)) of the texts' character n-grams, the
        texts taken as they are (as `shingles` does) or first passed through `normalize_batch`."""
        if normalize:
            codes, lengths = normalize_batch(texts)
        else:
            codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        return self.signatures_from_keys(*self.ngram_keys(codes, lengths))

    def signatures_from_keys(self, keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Signatures from `ngram_keys` output (keys of all texts concatenated, count per text)."""
        n_docs, p = len(counts), self.num_perm
        mins = np.full((n_docs, p), np.iinfo(np.uint32).max, dtype=np.uint32)
        docs = np.flatnonzero(counts)                       # documents that have n-grams
        if len(docs):
            offsets = np.concatenate(([0], np.cumsum(counts[docs])[:-1]))   # in `keys`
            buf = np.empty(min(self.chunk, len(keys)), dtype=np.uint32)
            for c0 in range(0, len(keys), self.chunk):
                chunk = keys[c0:c0 + self.chunk]
                c1 = c0 + len(chunk)
                lo = int(np.searchsorted(offsets, c0, side="right")) - 1
                hi = int(np.searchsorted(offsets, c1, side="left"))
                local = offsets[lo:hi] - c0
                local[0] = 0                                # a document that began in an earlier chunk
                part = np.empty((p, hi - lo), dtype=np.uint32)
                b = buf[:len(chunk)]
                for k in range(p):
                    np.multiply(chunk, self.a[k], out=b)
                    np.add(b, self.b[k], out=b)
                    np.minimum.reduceat(b, local, out=part[k])
                rows = docs[lo:hi]
                mins[rows] = np.minimum(mins[rows], part.T)
        return mins

    @staticmethod
    def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray | float:
        """Estimated Jaccard similarity: the fraction of equal signature entries (broadcasts)."""
        eq = np.asarray(sig_a) == np.asarray(sig_b)
        return eq.mean(axis=-1)


# ------------------------------------------------------------------------- verification sketches
_EMPTY32 = np.uint32(0xFFFFFFFF)
EMPTY = np.uint16(0xFFFF)          # an empty bin of a verification sketch


def oph_sketch(h: np.ndarray, doc: np.ndarray, n_docs: int, bins: int = 128) -> np.ndarray:
    """One-permutation MinHash (Li, Owen & Zhang 2012) of token sets given as mixed uint64 hashes `h`
    with their document index `doc`: the top bits of a hash pick one of `bins` (a power of two), each
    bin keeps the minimum of 32 further bits (`np.minimum.at`), and the low 16 bits of that minimum are
    stored (b-bit minwise hashing: unrelated minima agree with probability 2^-16). Empty bins hold
    `EMPTY`. Shape (n_docs, bins), uint16. Verification only, so no densification is needed."""
    if not 2 <= bins <= 1 << 16 or bins & (bins - 1):
        raise ValueError(f"bins must be a power of two in [2, 65536], got {bins}")
    out = np.full(n_docs * bins, _EMPTY32, dtype=np.uint32)
    if len(h):
        slot = np.asarray(doc, dtype=np.int64) * bins + (h >> _U64(65 - bins.bit_length())).astype(np.int64)
        np.minimum.at(out, slot, ((h >> _U64(16)) & _U64(0xFFFFFFFF)).astype(np.uint32))
    low = np.minimum(out & np.uint32(0xFFFF), np.uint32(0xFFFE)).astype(np.uint16)
    low[out == _EMPTY32] = EMPTY
    return low.reshape(n_docs, bins)


def sketch_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Jaccard estimate from two `oph_sketch` rows (or row-aligned arrays): N_equal / N_used, where a
    bin is used when it is non-empty in either row (1.0 when both are empty)."""
    a, b = np.asarray(a), np.asarray(b)
    used = (a != EMPTY) | (b != EMPTY)
    n_used = used.sum(axis=-1)
    equal = ((a == b) & used).sum(axis=-1)
    return np.where(n_used > 0, equal / np.maximum(n_used, 1), 1.0)


def _salt(seed: int, stream: int) -> np.uint64:
    return _U64((0x9E3779B97F4A7C15 * (seed * 7 + stream + 1)) % 2**64)


def char_multiset_sketch(codes: np.ndarray, lengths: np.ndarray, bins: int = 128, seed: int = 1
                         ) -> np.ndarray:
    """`oph_sketch` of each text's character *multiset*: the k-th occurrence of a character is the token
    (character, k), so the set Jaccard of the tokens is the multiset Jaccard
    sum(min(count)) / sum(max(count)) of the characters. Order-blind: it tells documents that share a
    template but differ in content apart from edited copies, which keep nearly all their characters."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    if not len(codes):
        return oph_sketch(np.empty(0, np.uint64), np.empty(0, np.int64), n, bins)
    doc = np.repeat(np.arange(n, dtype=np.uint64), lengths)
    if n <= 2048:                                      # (document, code point) fits in 32 bits
        key = (doc.astype(np.uint32) << np.uint32(21)) | np.asarray(codes, dtype=np.uint32)
        key.sort()
        key = key.astype(np.uint64)
    else:
        key = (doc << _U64(21)) | np.asarray(codes).astype(np.uint64)     # code points < 2^21
        key.sort()
    idx = np.arange(len(key))
    start = np.empty(len(key), dtype=bool)
    start[0] = True
    np.not_equal(key[1:], key[:-1], out=start[1:])
    rank = (idx - np.maximum.accumulate(np.where(start, idx, 0))).astype(np.uint64)
    token = (key & _U64(0x1FFFFF)) | (rank << _U64(21))
    token ^= _salt(seed, 1)
    return oph_sketch(_mix64(token), (key >> _U64(21)).astype(np.int64), n, bins)


def order_sketch(keys: np.ndarray, counts: np.ndarray, buckets: int = 8, bins: int = 128, seed: int = 1
                 ) -> np.ndarray:
    """`oph_sketch` of each text's n-grams tagged with their relative position: the token of the n-gram
    at position i of a text with c n-grams is (n-gram, floor(buckets * i / c)). Sparse edits shift
    positions only a little, so an edited copy keeps nearly its whole n-gram Jaccard here; a text whose
    sentences are the same but reordered (a restatement, not a copy) loses most of it.
    `keys`, `counts` as returned by `MinHasher.ngram_keys`."""
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    if not len(keys):
        return oph_sketch(np.empty(0, np.uint64), np.empty(0, np.int64), n, bins)
    doc = np.repeat(np.arange(n, dtype=np.int64), counts)
    c = counts[doc]
    pos = np.arange(len(keys), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    bucket = (pos * buckets // c).astype(np.uint64)
    token = np.asarray(keys).astype(np.uint64) | (bucket << _U64(32))
    token ^= _salt(seed, 2)
    return oph_sketch(_mix64(token), doc, n, bins)


# ----------------------------------------------------------------------------------------------- LSH
@functools.lru_cache(maxsize=64)
def optimal_param(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                  false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative areas, as datasketch's
    `MinHashLSH._optimal_param` does (same objective and search order; trapezoid integration)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    lo = np.linspace(0.0, threshold, 1001)
    hi = np.linspace(threshold, 1.0, 1001)
    best, best_err = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1.0 - (1.0 - lo ** r) ** b, lo)
            fn = np.trapezoid((1.0 - hi ** r) ** b, hi)
            err = false_positive_weight * fp + false_negative_weight * fn
            if err < best_err:
                best, best_err = (b, r), err
    return best


class LSHIndex:
    """Banded LSH over MinHash signatures, stored as sorted numpy runs (no Python object per entry).

    Each band of `rows` signature values is hashed to one uint64 key (the band number is mixed in, so all
    bands share one key space). Inserted keys live in sorted runs of (key, slot) merged like a binary
    counter (log-structured), so a batch query is a few `np.searchsorted` calls and an entry costs 12
    bytes. Slots are the caller's ids (int32, increasing with insertion order).
    """

    def __init__(self, num_perm: int, threshold: float, bands: int | None = None, rows: int | None = None,
                 seed: int = 1, max_bucket: int = 16, max_candidates: int = 32):
        if bands is None or rows is None:
            bands, rows = optimal_param(threshold, num_perm)
        if bands * rows > num_perm:
            raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
        self.num_perm, self.threshold, self.bands, self.rows = num_perm, threshold, bands, rows
        self.max_bucket, self.max_candidates = max_bucket, max_candidates
        rng = np.random.default_rng([seed, 7919])
        self._row_mult = rng.integers(1, 2**63, size=rows, dtype=np.uint64) | _U64(1)
        self._band_salt = rng.integers(0, 2**63, size=bands, dtype=np.uint64)
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self.size = 0                                      # number of inserted documents

    def keys(self, sigs: np.ndarray) -> np.ndarray:
        """uint64 band keys, shape (n, bands)."""
        s = np.asarray(sigs)[:, : self.bands * self.rows].astype(np.uint64)
        s = s.reshape(len(s), self.bands, self.rows)
        k = (s * self._row_mult).sum(axis=2, dtype=np.uint64)   # wraps mod 2^64
        k += self._band_salt
        return _mix64(k)

    @staticmethod
    def sort_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sorted flat keys, their row) for keys of shape (n, bands); rows ascending within a key."""
        flat = keys.ravel()
        order = np.argsort(flat)                      # (SIMD quicksort; a stable sort is 2x slower)
        skeys, srows = flat[order], order // keys.shape[1]
        same = np.flatnonzero(skeys[1:] == skeys[:-1])
        if len(same):                                 # rare: put rows in order inside equal-key groups
            members = np.unique(np.concatenate((same, same + 1)))
            srows[members] = srows[members][np.lexsort((srows[members], skeys[members]))]
        return skeys, srows

    def query(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pairs (query row, slot) for keys of shape (n, bands), sorted: unique pairs, reading
        at most `max_bucket` slots (the earliest inserted) per band key and keeping at most
        `max_candidates` slots per row (those sharing the most bands, then the earliest)."""
        return self.query_sorted(*self.sort_keys(keys))

    def query_sorted(self, skeys: np.ndarray, srows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`query` for keys already sorted by `sort_keys` (sorted queries make searchsorted cheap)."""
        rows_out, slots_out = [], []
        for run_keys, run_slots in self._runs:
            left = np.searchsorted(run_keys, skeys, side="left")
            found = run_keys[np.minimum(left, len(run_keys) - 1)] == skeys
            hit = np.flatnonzero(found)
            if not len(hit):
                continue
            start = left[hit]
            c = np.minimum(np.searchsorted(run_keys, skeys[hit], side="right") - start, self.max_bucket)
            pos = np.repeat(start - (np.cumsum(c) - c), c) + np.arange(int(c.sum()), dtype=np.int64)
            rows_out.append(np.repeat(srows[hit], c))
            slots_out.append(run_slots[pos].astype(np.int64))
        if not rows_out:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return _top_pairs(np.concatenate(rows_out), np.concatenate(slots_out), self.max_candidates)

    def insert(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """Insert documents: band keys of shape (n, bands) and their slots (increasing)."""
        if len(keys):
            skeys, srows = self.sort_keys(keys)
            self.insert_sorted(skeys, np.asarray(slots, dtype=np.int32)[srows], len(keys))

    def insert_sorted(self, skeys: np.ndarray, sslots: np.ndarray, n_docs: int) -> None:
        """Insert keys already sorted (slots ascending within a key), e.g. a filtered `sort_keys` output."""
        if not len(skeys):
            return
        self._runs.append((skeys, sslots.astype(np.int32)))
        self.size += n_docs
        # merge runs of similar size; the older run's entries stay first within a key
        while len(self._runs) > 1 and len(self._runs[-1][0]) * 2 >= len(self._runs[-2][0]):
            (k1, s1), (k2, s2) = self._runs[-2], self._runs[-1]
            k, sl = np.concatenate((k1, k2)), np.concatenate((s1, s2))
            order = np.argsort(k, kind="stable")       # two sorted runs: one linear merge
            self._runs[-2:] = [(k[order], sl[order])]

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + s.nbytes for k, s in self._runs)


# ------------------------------------------------------------------------------------------ results
class Decision(NamedTuple):
    """What happened to the document at `index` (0-based position in the input stream)."""
    index: int
    keep: bool
    reason: str                    # "kept" | "exact" | "near"
    dup_of: int | None = None      # index of the earlier document it duplicates: for "near" a kept one;
    #                                for "exact" the first occurrence of the same normalised text
    #                                (which may itself have been removed as a near duplicate)
    similarity: float | None = None  # estimated n-gram Jaccard with dup_of (near duplicates)
    short: bool = False            # shorter than min_chars: only exact-deduplicated


@dataclass
class SourceCounts:
    total: int = 0
    exact_removed: int = 0
    near_removed: int = 0
    kept: int = 0
    short: int = 0                 # documents only exact-checked (shorter than min_chars)


@dataclass
class DedupReport:
    total: int = 0
    exact_removed: int = 0
    near_removed: int = 0
    kept: int = 0
    short: int = 0
    per_source: dict[str, SourceCounts] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    bands: int = 0
    rows: int = 0
    normalization: str = NORMALIZATION
    seconds: float = 0.0
    index_bytes: int = 0           # persistent near-duplicate state at the end (LSH, signatures)

    def add(self, source: str, d: Decision) -> None:
        sc = self.per_source.setdefault(source, SourceCounts())
        for obj in (self, sc):
            obj.total += 1
            obj.short += d.short
            if d.keep:
                obj.kept += 1
            elif d.reason == "exact":
                obj.exact_removed += 1
            else:
                obj.near_removed += 1

    def as_dict(self) -> dict:
        """Everything but the timing (so that the dict is deterministic), plus a `thresholds` summary."""
        out = dataclasses.asdict(self)
        out.pop("seconds")
        out["thresholds"] = {k: self.config.get(k) for k in
                             ("lsh_threshold", "verify_threshold", "order_ratio", "char_threshold", "min_chars")}
        out["thresholds"].update(bands=self.bands, rows=self.rows)
        return out

    def summary(self) -> str:
        lines = [f"dedup: {self.total} docs, removed {self.exact_removed} exact + {self.near_removed} near, "
                 f"kept {self.kept} (bands {self.bands} x rows {self.rows}, "
                 f"lsh {self.config.get('lsh_threshold')}, verify {self.config.get('verify_threshold')}, "
                 f"order {self.config.get('order_ratio')}, char {self.config.get('char_threshold')}, "
                 f"min_chars {self.config.get('min_chars')})"]
        for name, sc in sorted(self.per_source.items()):
            lines.append(f"  {name}: total {sc.total}, exact {sc.exact_removed}, near {sc.near_removed}, "
                         f"kept {sc.kept}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- the engine
class Deduplicator:
    """Stateful exact + near deduplication; feed it batches of texts in stream order.

    `process(texts)` returns one Decision per text; later batches are compared with every document kept
    so far. State: a dict of exact hashes (one entry per distinct normalised text) and, for each kept
    long document, a stored row (uint16: 16-bit MinHash signature, order sketch, character sketch) and
    one LSH entry per band.

    A candidate pair (sharing an LSH band of the 5-gram signature) is a near duplicate when
      1. its estimated 5-gram Jaccard >= `verify_threshold`;
      2. its order-tagged 5-gram Jaccard (`order_sketch`) >= `order_ratio` x that estimate: edited copies
         keep their n-grams at the same relative positions, reordered restatements do not;
      3. its character-multiset Jaccard (`char_multiset_sketch`) >= `char_threshold`: a necessary
         condition of Lee et al.'s edit-similarity criterion (d edits change at most d characters of the
         multiset each way, so EditSim >= s implies multiset Jaccard >= s / (2 - s)); it rejects
         documents that share a template but differ in content, whose 5-gram Jaccard can equal that of
         a 15%-edited copy.
    Among several passing candidates the most similar (then the earliest) is reported as `dup_of`.
    """

    def __init__(self, config: DedupConfig | None = None):
        self.config = cfg = config or DedupConfig()
        if not 0.0 < cfg.verify_threshold <= 1.0:
            raise ValueError(f"verify_threshold must be in (0, 1], got {cfg.verify_threshold}")
        self.hasher = MinHasher(cfg.num_perm, cfg.ngram, cfg.seed)
        self.lsh = LSHIndex(cfg.num_perm, cfg.lsh_threshold, cfg.bands or None, cfg.rows or None,
                            seed=cfg.seed, max_bucket=cfg.max_bucket, max_candidates=cfg.max_candidates)
        self.min_chars = max(cfg.min_chars, cfg.ngram)
        self.use_order = cfg.order_ratio > 0
        self.use_char = cfg.char_threshold > 0
        self._width = cfg.num_perm + cfg.sketch_bins * (self.use_order + self.use_char)
        self._exact: dict[bytes, int] = {}
        self._rows = np.empty((1024, self._width), dtype=np.uint16)    # stored rows of kept long docs
        self._slot_doc = np.empty(1024, dtype=np.int64)                 # slot -> stream index
        self._n_slots = 0
        self.n_seen = 0

    # -- state size
    @property
    def nbytes(self) -> int:
        """Bytes of the persistent state: LSH runs, stored rows and slot map of the kept long documents,
        and (estimated from CPython object sizes) the exact-hash dict."""
        near = self.lsh.nbytes + self._rows[: self._n_slots].nbytes + self._slot_doc[: self._n_slots].nbytes
        return near + sys.getsizeof(self._exact) + len(self._exact) * (49 + 32)   # 16-byte key, int

    def _store(self, rows: np.ndarray, docs: np.ndarray) -> np.ndarray:
        n = len(rows)
        need = self._n_slots + n
        if need > len(self._rows):
            cap = max(need, 2 * len(self._rows))
            grown = np.empty((cap, self._width), dtype=np.uint16)
            grown[: self._n_slots] = self._rows[: self._n_slots]
            slot_doc = np.empty(cap, dtype=np.int64)
            slot_doc[: self._n_slots] = self._slot_doc[: self._n_slots]
            self._rows, self._slot_doc = grown, slot_doc
        slots = np.arange(self._n_slots, need, dtype=np.int64)
        self._rows[slots] = rows
        self._slot_doc[slots] = docs
        self._n_slots = need
        return slots

    def sketch(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(MinHash signatures uint32, stored rows uint16) of normalised texts. A stored row is the low
        16 bits of the signature (b-bit MinHash), then the order sketch, then the character sketch."""
        cfg = self.config
        keys, counts = self.hasher.ngram_keys(codes, lengths)
        sig = self.hasher.signatures_from_keys(keys, counts)
        parts = [(sig & np.uint32(0xFFFF)).astype(np.uint16)]
        if self.use_order:
            parts.append(order_sketch(keys, counts, cfg.order_buckets, cfg.sketch_bins, cfg.seed))
        if self.use_char:
            parts.append(char_multiset_sketch(codes, lengths, cfg.sketch_bins, cfg.seed))
        return sig, np.concatenate(parts, axis=1)

    def _verify(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(estimated n-gram Jaccard, passes all tests) for stored rows a[i] vs b[i]."""
        cfg = self.config
        p, k = cfg.num_perm, cfg.sketch_bins
        sim = (a[:, :p] == b[:, :p]).mean(axis=1)
        ok = sim >= cfg.verify_threshold
        col = p
        if self.use_order:
            if ok.any():
                ok[ok] = sketch_jaccard(a[ok, col:col + k], b[ok, col:col + k]) >= cfg.order_ratio * sim[ok]
            col += k
        if self.use_char and ok.any():
            ok[ok] = sketch_jaccard(a[ok, col:col + k], b[ok, col:col + k]) >= cfg.char_threshold
        return sim, ok

    def _verify_pairs(self, a_rows: np.ndarray, ia: np.ndarray, b_rows: np.ndarray, ib: np.ndarray,
                      chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """`_verify` of a_rows[ia[i]] vs b_rows[ib[i]], in chunks (bounded memory)."""
        sims, oks = [], []
        for s in range(0, len(ia), chunk):
            sim, ok = self._verify(a_rows[ia[s:s + chunk]], b_rows[ib[s:s + chunk]])
            sims.append(sim)
            oks.append(ok)
        return np.concatenate(sims), np.concatenate(oks)

    # -- one batch
    def process(self, texts: Sequence[str]) -> list[Decision]:
        """Decisions for the next texts of the stream (compared with each other and with all kept so far)."""
        cfg = self.config
        base = self.n_seen
        self.n_seen += len(texts)
        try:
            codes, lengths = normalize_batch(texts)
        except TypeError:                                 # None or non-string texts: compare as strings
            texts = [_as_str(t) for t in texts]
            codes, lengths = normalize_batch(texts)
        bounds = np.concatenate(([0], np.cumsum(lengths)))
        decisions: list[Decision | None] = [None] * len(texts)

        # stage 1: exact (also within the batch); collect the long survivors for stage 2
        long_idx: list[int] = []
        exact = self._exact
        blake2b = hashlib.blake2b
        view = memoryview(codes.view(np.uint8)) if len(codes) else memoryview(b"")
        byte_bounds = (bounds * 4).tolist()
        shorts = (lengths < self.min_chars).tolist()
        for i, short in enumerate(shorts):
            if cfg.exact:
                key = blake2b(view[byte_bounds[i]:byte_bounds[i + 1]], digest_size=16).digest()
                first = exact.get(key)
                if first is not None:
                    decisions[i] = Decision(base + i, False, "exact", first, None, short)
                    continue
                exact[key] = base + i
            if short or not cfg.near:
                decisions[i] = Decision(base + i, True, "kept", None, None, short)
            else:
                long_idx.append(i)
        if not long_idx:
            return decisions  # type: ignore[return-value]

        # stage 2: near duplicates among long documents
        sel = np.asarray(long_idx)
        if len(sel) == len(texts):
            sub_codes, sub_len = codes, lengths
        else:
            starts = bounds[:-1][sel]
            sub_len = lengths[sel]
            take = np.arange(int(sub_len.sum()), dtype=np.int64)
            take += np.repeat(starts - (np.cumsum(sub_len) - sub_len), sub_len)
            sub_codes = codes[take]
        sig, stored = self.sketch(sub_codes, sub_len)
        keys = self.lsh.keys(sig)
        skeys, srows = LSHIndex.sort_keys(keys)          # one sort serves query, in-batch pairs, insert
        m = len(long_idx)
        # candidates among documents kept in earlier batches: best verified (similarity, slot) per row
        q_row, q_slot = self.lsh.query_sorted(skeys, srows)
        prev: dict[int, tuple[float, int]] = {}
        if len(q_row):
            q_sim, ok = self._verify_pairs(stored, q_row, self._rows, q_slot)
            for r, s, sim in zip(q_row[ok].tolist(), q_slot[ok].tolist(), q_sim[ok].tolist()):
                best = prev.get(r)
                if best is None or sim > best[0] or (sim == best[0] and s < best[1]):
                    prev[r] = (sim, s)
        # candidates inside this batch: an earlier row sharing a band key
        in_a, in_b = _pairs_in_sorted(skeys, srows, self.lsh.max_bucket, self.lsh.max_candidates)
        later: dict[int, list[tuple[int, float]]] = {}
        if len(in_a):
            in_sim, ok = self._verify_pairs(stored, in_a, stored, in_b)
            for a, b, sim in zip(in_a[ok].tolist(), in_b[ok].tolist(), in_sim[ok].tolist()):
                later.setdefault(b, []).append((a, sim))
        kept_rows = np.ones(m, dtype=bool)
        for r in sorted(set(prev) | set(later)):      # in stream order: earlier rows are decided first
            best_sim, dup = -1.0, None
            if r in prev:
                best_sim, slot = prev[r]
                dup = int(self._slot_doc[slot])
            for a, sim in later.get(r, ()):
                if kept_rows[a] and sim > best_sim:
                    best_sim, dup = sim, base + long_idx[a]
            if dup is not None:
                kept_rows[r] = False
                i = long_idx[r]
                decisions[i] = Decision(base + i, False, "near", dup, round(float(best_sim), 4))
        for r in np.flatnonzero(kept_rows).tolist():
            i = long_idx[r]
            decisions[i] = Decision(base + i, True, "kept")
        new = np.flatnonzero(kept_rows)
        slot_of_row = np.full(m, -1, dtype=np.int64)
        slot_of_row[new] = self._store(stored[new], base + sel[new])
        keep_entry = kept_rows[srows]
        self.lsh.insert_sorted(skeys[keep_entry], slot_of_row[srows[keep_entry]], len(new))
        return decisions  # type: ignore[return-value]


def _top_pairs(q: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique (q, c) pairs sorted by q then c, keeping for each q at most `k` c's: those that occur most
    often in the input (= share the most LSH bands), then the smallest. Bounds the verification work of
    documents that share boilerplate with many others."""
    uniq, count = np.unique((q.astype(np.int64) << 32) | c.astype(np.int64), return_counts=True)
    qq = uniq >> 32
    if k and len(uniq) > k:
        first = np.flatnonzero(np.concatenate(([True], qq[1:] != qq[:-1])))
        sizes = np.diff(np.concatenate((first, [len(uniq)])))
        if sizes.max() > k:
            order = np.lexsort((uniq & 0xFFFFFFFF, -count, qq))     # by q, most bands, smallest c
            rank = np.arange(len(uniq)) - np.repeat(first, sizes)    # qq[order] has the same groups
            uniq = np.sort(uniq[order[rank < k]])
            qq = uniq >> 32
    return qq, uniq & 0xFFFFFFFF


def _pairs_in_sorted(skeys: np.ndarray, srows: np.ndarray, max_bucket: int, max_candidates: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Unique row pairs (a < b) of a batch whose band keys coincide in at least one band, from
    `LSHIndex.sort_keys` output; each row is paired with at most `max_bucket` earlier rows per key and
    keeps at most `max_candidates` of them (`_top_pairs`). Sorted by b, then a."""
    if len(skeys) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    idx = np.arange(len(skeys))
    new_group = np.empty(len(skeys), dtype=bool)
    new_group[0] = True
    np.not_equal(skeys[1:], skeys[:-1], out=new_group[1:])
    dup = np.flatnonzero(~new_group)                          # not the first member of its key group
    if not len(dup):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    group_start = np.maximum.accumulate(np.where(new_group, idx, 0))[dup]
    c = np.minimum(dup - group_start, max_bucket)             # earlier members to pair with
    later = np.repeat(srows[dup], c)
    first = np.repeat(group_start - (np.cumsum(c) - c), c) + np.arange(int(c.sum()), dtype=np.int64)
    earlier = srows[first]
    keep = earlier != later
    b, a = _top_pairs(later[keep], earlier[keep], max_candidates)
    return a, b


# --------------------------------------------------------------------------------------- streaming
def _as_str(x: Any) -> str:
    return x if x.__class__ is str else ("" if x is None else str(x))


def _batches(items: Iterable[Any], text_of: Callable[[Any], str] | None, max_docs: int, max_chars: int
             ) -> Iterator[tuple[list[Any], list[str]]]:
    """Consecutive batches of (items, texts): at most `max_docs` items, and closed by the item that
    brings the batch to `max_chars` characters. Items are pulled lazily, a few hundred at a time."""
    it = iter(items)
    pend_items: list[Any] = []
    pend_texts: list[str] = []
    chars, exhausted = 0, False
    while True:
        while not exhausted and len(pend_items) < max_docs and chars < max_chars:
            chunk = list(itertools.islice(it, min(256, max_docs - len(pend_items))))
            if not chunk:
                exhausted = True
                break
            texts = [_as_str(t) for t in (chunk if text_of is None else map(text_of, chunk))]
            pend_items += chunk
            pend_texts += texts
            chars += sum(map(len, texts))
        if not pend_items:
            return
        cum = np.cumsum(np.fromiter(map(len, pend_texts), dtype=np.int64, count=len(pend_texts)))
        cut = min(int(np.searchsorted(cum, max_chars, side="left")) + 1, max_docs, len(pend_items))
        yield pend_items[:cut], pend_texts[:cut]
        pend_items, pend_texts = pend_items[cut:], pend_texts[cut:]
        chars = int(cum[-1] - cum[cut - 1])


def dedup_stream(texts: Iterable[str], config: DedupConfig | None = None, *,
                 deduplicator: Deduplicator | None = None) -> Iterator[Decision]:
    """Yield one Decision per input text, in order, consuming `texts` lazily in batches of
    `config.batch_size` documents / `config.batch_chars` characters."""
    dd = deduplicator or Deduplicator(config)
    cfg = dd.config
    for _, batch in _batches(texts, None, cfg.batch_size, cfg.batch_chars):
        yield from dd.process(batch)


def _text_getter(text_key: str | Callable[[dict], str]) -> Callable[[dict], str]:
    if callable(text_key):
        return lambda rec: text_key(rec) or ""
    return lambda rec: rec.get(text_key) or ""


def iter_dedup_records(records: Iterable[dict], *, text_key: str | Callable[[dict], str] = "text",
                       config: DedupConfig | None = None, progress: bool = True,
                       report: DedupReport | None = None, source_key: str = "source") -> Iterator[dict]:
    """Yield the kept records in input order (first occurrence wins); `report`, if given, is filled in
    as the stream is consumed (complete once the generator is exhausted)."""
    from tqdm.auto import tqdm

    dd = Deduplicator(config)
    cfg = dd.config
    rep = report if report is not None else DedupReport()
    rep.config, rep.bands, rep.rows = dataclasses.asdict(cfg), dd.lsh.bands, dd.lsh.rows
    text_of = _text_getter(text_key)
    total = len(records) if hasattr(records, "__len__") else None  # type: ignore[arg-type]
    bar = tqdm(total=total, desc="dedup", unit="doc", disable=not progress, mininterval=0.5)
    t0 = time.perf_counter()
    try:
        for recs, texts in _batches(records, text_of, cfg.batch_size, cfg.batch_chars):
            for rec, d in zip(recs, dd.process(texts)):
                rep.add(str(rec.get(source_key, "unknown")) if isinstance(rec, dict) else "unknown", d)
                if d.keep:
                    yield rec
            bar.update(len(recs))
            bar.set_postfix(exact=rep.exact_removed, near=rep.near_removed, refresh=False)
    finally:
        bar.close()
        rep.seconds = time.perf_counter() - t0
        rep.index_bytes = dd.nbytes


def dedup_records(records: Iterable[dict], *, text_key: str | Callable[[dict], str] = "text",
                  config: DedupConfig | None = None, progress: bool = True
                  ) -> tuple[list[dict], DedupReport]:
    """Exact + near deduplication of records (first occurrence kept). Works on any iterable, including
    generators: the input is read in batches and only hashes of the texts are retained.

    `text_key` names the text field or is a callable record -> str (e.g. to join an SFT conversation).
    Records carry a "source" key for the per-source counts in the report.
    """
    report = DedupReport()
    kept = list(iter_dedup_records(records, text_key=text_key, config=config, progress=progress,
                                   report=report))
    return kept, report
