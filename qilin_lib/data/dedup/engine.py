"""The stateful engine behind every entry point: exact, then near deduplication of batches in stream order.

Kept documents are remembered only by hashes and fixed-size rows (signature + sketches), so the state
grows with the number of kept documents, never with their text.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Sequence

import numpy as np

from ...config import DedupConfig
from .lsh import LSHIndex, _pairs_in_sorted
from .minhash import MinHasher, char_multiset_sketch, order_sketch, sketch_jaccard
from .normalize import _as_str, normalize_batch
from .report import Decision


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
