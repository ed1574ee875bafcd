"""Deduplication of text records following Lee et al. 2022 ("Deduplicating Training Data Makes Language
Models Better"), as Qilin-Med did for ChiMed.

Two stages, applied in one streaming pass that keeps the first occurrence of every duplicate group:

1. Exact duplicates: documents whose *normalised* text is identical (compared by a 64-bit BLAKE2b hash;
   collision odds in exact.py).
   `normalize_text` applies, in this order: Unicode NFKC (full-width ASCII letters, digits and
   punctuation become half-width, the ideographic space becomes a space, compatibility characters such
   as "℃", "㎎", "Ⅱ", "①" are unfolded); a mapping of the CJK punctuation that NFKC leaves alone to ASCII
   (`。、“”‘’「」『』【】〔〕〖〗《》〈〉～〜—–―…·・` and a few more, see `normalize._PUNCT`); case folding;
   every run of whitespace (spaces, tabs, newlines, ideographic spaces) collapsed to one space, and
   leading and trailing whitespace removed. `normalize_batch` computes the same thing vectorised.
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
third one (no chaining). Memory grows with the number of kept documents, never with their text. In RAM:
per kept long document one LSH entry per band (8 bytes: 512 B with 64 bands), per distinct text an
exact-hash entry (12 B). On disk, in an anonymous temporary file (`tmp_dir`, removed on close): per kept
long document its stored row (16-bit MinHash signature + two 128-bin sketches + its stream index, 776 B),
read back only when it is a candidate. The input is consumed in batches bounded by a document count and a
character count, and only hashes survive a batch. Results are deterministic given `seed`.
`Deduplicator.query(texts)` gives the decision each text would get against the documents kept so far
without keeping it (decontamination).

Layout (one concept per module):
    normalize.py   normalize_text, normalize_batch, exact_hash, shingles, NORMALIZATION
    exact.py       ExactIndex (64-bit hashes of normalised texts in sorted runs), text_hashes
    minhash.py     MinHasher; the verification sketches oph_sketch, order_sketch, char_multiset_sketch,
                   sketch_jaccard, EMPTY
    lsh.py         LSHIndex, optimal_param (and the candidate-pair helpers)
    rows.py        RowStore: the stored rows of kept documents in a temporary file
    report.py      Decision, SourceCounts, DedupReport
    engine.py      Deduplicator
    stream.py      dedup_stream, iter_dedup_records, dedup_records

Public API (all importable from qilin_lib.data.dedup):
    dedup_records(records, text_key="text", config=None, progress=True) -> (kept records, DedupReport)
    iter_dedup_records(...)                  the same as a generator (the report fills as it goes)
    dedup_stream(texts, config=None)         -> iterator of Decision (index, keep, reason, dup_of, ...)
    Deduplicator                             the stateful engine behind all three (batch API: process,
                                             query, nbytes in RAM, disk_bytes, close)
    MinHasher, LSHIndex, optimal_param       the vectorised MinHash and the banded index
    order_sketch, char_multiset_sketch, oph_sketch, sketch_jaccard   the verification sketches
    normalize_text, normalize_batch, exact_hash, shingles   helpers (shingles: pure-Python reference)
"""

from __future__ import annotations

from .engine import Deduplicator
from .lsh import LSHIndex, optimal_param
from .minhash import EMPTY  # noqa: F401  (tests read it; not in __all__, as before the split)
from .minhash import MinHasher, char_multiset_sketch, oph_sketch, order_sketch, sketch_jaccard
from .normalize import NORMALIZATION, exact_hash, normalize_batch, normalize_text, shingles
from .report import Decision, DedupReport, SourceCounts
from .stream import dedup_records, dedup_stream, iter_dedup_records

__all__ = [
    "normalize_text", "normalize_batch", "exact_hash", "shingles", "MinHasher", "LSHIndex",
    "optimal_param", "oph_sketch", "char_multiset_sketch", "order_sketch", "sketch_jaccard",
    "Decision", "SourceCounts", "DedupReport", "Deduplicator", "dedup_stream", "dedup_records",
    "iter_dedup_records", "NORMALIZATION",
]
