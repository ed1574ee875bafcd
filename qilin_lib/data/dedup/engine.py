"""The stateful engine behind every entry point: exact, then near deduplication of batches in stream order.

Kept documents are remembered only by hashes and fixed-size rows (signature + sketches), so the state
grows with the number of kept documents, never with their text. In RAM: per distinct text 12 bytes
(`ExactIndex`), per kept long document one 8-byte LSH entry per band (`LSHIndex`: 512 bytes with 64
bands). The rows (776 bytes each) are on disk (`RowStore`) and read back only for candidate pairs.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ...config import DedupConfig
from .exact import ExactIndex, text_hashes
from .lsh import LSHIndex, _pairs_in_sorted
from .minhash import MinHasher, char_multiset_sketch, order_sketch, sketch_jaccard
from .normalize import _as_str, normalize_batch
from .report import Decision
from .rows import RowStore


class Deduplicator:
    """Stateful exact + near deduplication; feed it batches of texts in stream order.

    `process(texts)` returns one Decision per text; later batches are compared with every document kept
    so far; `query(texts)` gives the same decisions without keeping anything. State: the exact index
    (one 64-bit hash per distinct normalised text, RAM), and for each kept long document one LSH entry
    per band (RAM) and a stored row (uint16: 16-bit MinHash signature, order sketch, character sketch;
    on disk, see `RowStore`).

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

    def __init__(self, config: DedupConfig | None = None, *, tmp_dir: str | os.PathLike | None = None):
        """`tmp_dir`: where the stored rows' temporary file goes (default: `tempfile.gettempdir()`); the
        file is removed by `close()`, when the engine is garbage-collected, or when the process ends."""
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
        self._exact = ExactIndex()
        self._rows = RowStore(self._width, tmp_dir)     # stored rows of kept long docs, by slot
        self.n_seen = 0

    # -- state size
    @property
    def nbytes(self) -> int:
        """Bytes of the state held in RAM: the LSH runs and the exact-hash runs."""
        return self.lsh.nbytes + self._exact.nbytes

    @property
    def disk_bytes(self) -> int:
        """Bytes of the stored rows in the temporary file (row + stream index per kept long document)."""
        return self._rows.nbytes

    def close(self) -> None:
        """Remove the temporary file of stored rows (the engine cannot be used afterwards)."""
        self._rows.close()

    def __enter__(self) -> "Deduplicator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sketch(self, codes: np.ndarray, lengths: np.ndarray, chunk_chars: int = 1 << 16
               ) -> tuple[np.ndarray, np.ndarray]:
        """(MinHash signatures uint32, stored rows uint16) of normalised texts. A stored row is the low
        16 bits of the signature (b-bit MinHash), then the order sketch, then the character sketch.

        Every value depends on its own text only, so the texts are sketched `chunk_chars` characters at
        a time: the temporaries (~90 bytes a character: n-gram hashes, tokens, sort keys) stay a few MB
        whatever the batch size."""
        lengths = np.asarray(lengths, dtype=np.int64)
        ends = np.cumsum(lengths)
        sigs, rows, d0 = [], [], 0
        while d0 < len(lengths) or not sigs:
            c0 = int(ends[d0 - 1]) if d0 else 0
            d1 = max(d0 + 1, int(np.searchsorted(ends, c0 + chunk_chars, side="right")))
            d1 = min(d1, len(lengths))
            sig, row = self._sketch(codes[c0:int(ends[d1 - 1]) if d1 else 0], lengths[d0:d1])
            sigs.append(sig)
            rows.append(row)
            d0 = d1
        if len(sigs) == 1:
            return sigs[0], rows[0]
        return np.concatenate(sigs), np.concatenate(rows)

    def _sketch(self, codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        keys, counts = self.hasher.ngram_keys(codes, lengths)
        sig = self.hasher.signatures_from_keys(keys, counts)
        parts = [(sig & np.uint32(0xFFFF)).astype(np.uint16)]
        if self.use_order:
            parts.append(order_sketch(keys, counts, cfg.order_buckets, cfg.sketch_bins, cfg.seed))
        del keys
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

    def _best_kept(self, stored: np.ndarray, q_row: np.ndarray, q_slot: np.ndarray, chunk: int = 8192
                   ) -> dict[int, tuple[float, int, int]]:
        """For candidate pairs (row of `stored`, slot of a kept document): row -> (similarity, slot,
        stream index) of its best verified kept document (most similar, then earliest). Kept rows are
        read from disk `chunk` at a time (each candidate's row once), so memory stays bounded."""
        best: dict[int, tuple[float, int, int]] = {}
        if not len(q_row):
            return best
        uniq, inv = np.unique(q_slot, return_inverse=True)
        for c0 in range(0, len(uniq), chunk):
            rows, docs = self._rows.read(uniq[c0:c0 + chunk])
            sel = np.flatnonzero((inv >= c0) & (inv < c0 + chunk)) if len(uniq) > chunk else slice(None)
            local = inv[sel] - c0
            sim, ok = self._verify_pairs(stored, q_row[sel], rows, local)
            for r, s, d, sm in zip(q_row[sel][ok].tolist(), uniq[c0 + local[ok]].tolist(),
                                   docs[local[ok]].tolist(), sim[ok].tolist()):
                b = best.get(r)
                if b is None or sm > b[0] or (sm == b[0] and s < b[1]):
                    best[r] = (sm, s, d)
        return best

    def _exact_and_long(self, texts: Sequence[str], base: int, register: bool
                        ) -> tuple[list, list[Decision | None], list[int], np.ndarray, np.ndarray, np.ndarray]:
        """Stage 1 for a batch: (texts, decisions with the exact duplicates and the kept short texts
        filled in, indices of the long texts left for stage 2, codes, lengths, bounds). With `register`
        new texts are added to the exact index and a text can duplicate an earlier one of the batch;
        without (a query) texts are looked up only."""
        cfg = self.config
        try:
            codes, lengths = normalize_batch(texts)
        except TypeError:                                 # None or non-string texts: compare as strings
            texts = [_as_str(t) for t in texts]
            codes, lengths = normalize_batch(texts)
        n = len(texts)
        bounds = np.concatenate(([0], np.cumsum(lengths)))
        dup_of = np.full(n, -1, dtype=np.int64)
        if cfg.exact and n:
            hashes = text_hashes(codes, bounds)
            dup_of = self._exact.lookup(hashes)
            if register:
                uniq, first, inv = np.unique(hashes, return_index=True, return_inverse=True)
                in_batch = first[inv]                     # first position of the same text in the batch
                earlier = (dup_of < 0) & (in_batch < np.arange(n))
                dup_of[earlier] = base + in_batch[earlier]
                new = dup_of[first] < 0                   # (first positions are still the lookup's)
                self._exact.insert(uniq[new], base + first[new])
        decisions: list[Decision | None] = [None] * n
        long_idx: list[int] = []
        shorts = (lengths < self.min_chars).tolist()
        for i, (short, dup) in enumerate(zip(shorts, dup_of.tolist())):
            if dup >= 0:
                decisions[i] = Decision(base + i, False, "exact", dup, None, short)
            elif short or not cfg.near:
                decisions[i] = Decision(base + i, True, "kept", None, None, short)
            else:
                long_idx.append(i)
        return texts, decisions, long_idx, codes, lengths, bounds

    def _long_sketches(self, codes, lengths, bounds, long_idx: list[int]) -> tuple[np.ndarray, np.ndarray,
                                                                                  np.ndarray, np.ndarray]:
        """(stored rows, sorted band keys, their rows, positions) of the long texts `long_idx`."""
        sel = np.asarray(long_idx)
        if len(sel) == len(lengths):
            sub_codes, sub_len = codes, lengths
        else:
            starts = bounds[:-1][sel]
            sub_len = lengths[sel]
            take = np.arange(int(sub_len.sum()), dtype=np.int64)
            take += np.repeat(starts - (np.cumsum(sub_len) - sub_len), sub_len)
            sub_codes = codes[take]
        sig, stored = self.sketch(sub_codes, sub_len)
        skeys, srows = LSHIndex.sort_keys(self.lsh.keys(sig))   # one sort serves query, in-batch pairs, insert
        return stored, skeys, srows, sel

    # -- one batch
    def process(self, texts: Sequence[str]) -> list[Decision]:
        """Decisions for the next texts of the stream (compared with each other and with all kept so far)."""
        base = self.n_seen
        self.n_seen += len(texts)
        texts, decisions, long_idx, codes, lengths, bounds = self._exact_and_long(texts, base, register=True)
        if not long_idx:
            return decisions  # type: ignore[return-value]

        # stage 2: near duplicates among long documents
        stored, skeys, srows, sel = self._long_sketches(codes, lengths, bounds, long_idx)
        m = len(long_idx)
        # candidates among documents kept in earlier batches: best verified (similarity, slot, doc) per row
        prev = self._best_kept(stored, *self.lsh.query_sorted(skeys, srows))
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
                best_sim, _, dup = prev[r]
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
        if len(new):
            slot_of_row = np.full(m, -1, dtype=np.int64)
            slot_of_row[new] = self._rows.append(stored[new], base + sel[new])
            keep_entry = kept_rows[srows]
            self.lsh.insert_sorted(skeys[keep_entry], slot_of_row[srows[keep_entry]], len(new))
        return decisions  # type: ignore[return-value]

    def query(self, texts: Sequence[str]) -> list[Decision]:
        """For each text, the decision `process` would give it against the documents kept so far, without
        keeping it and without comparing the texts with each other (e.g. to find evaluation items that
        the training corpus contains: decontamination). `Decision.index` is the position in `texts`;
        the state, and so every later decision, is left unchanged. Texts are looked up in slices of
        `batch_size` documents / `batch_chars` characters (independent lookups: the same result, bounded
        memory)."""
        cfg, out, start = self.config, [], 0
        lengths = [len(t) if isinstance(t, str) else 0 for t in texts]
        while start < len(texts):
            stop, chars = start, 0
            while stop < len(texts) and stop - start < cfg.batch_size and (stop == start or chars < cfg.batch_chars):
                chars += lengths[stop]
                stop += 1
            out += self._query_batch(texts[start:stop], start)
            start = stop
        return out

    def _query_batch(self, texts: Sequence[str], base: int) -> list[Decision]:
        texts, decisions, long_idx, codes, lengths, bounds = self._exact_and_long(texts, base, register=False)
        if long_idx:
            stored, skeys, srows, _ = self._long_sketches(codes, lengths, bounds, long_idx)
            prev = self._best_kept(stored, *self.lsh.query_sorted(skeys, srows))
            for r, i in enumerate(long_idx):
                if r in prev:
                    sim, _, dup = prev[r]
                    decisions[i] = Decision(base + i, False, "near", dup, round(float(sim), 4))
                else:
                    decisions[i] = Decision(base + i, True, "kept")
        return decisions  # type: ignore[return-value]
