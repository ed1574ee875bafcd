"""Banded LSH over MinHash signatures: candidate pairs are documents that agree on a whole band.

`optimal_param` picks bands x rows for a threshold as datasketch does. The index is sorted numpy runs
rather than a dict of buckets (12 bytes an entry, batch queries by `np.searchsorted`), and the caps
`max_bucket` / `max_candidates` bound the verification work of documents that share boilerplate with
many others.
"""

from __future__ import annotations

import functools

import numpy as np

from .minhash import _U64, _mix64


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


# ------------------------------------------------------------------------------------ candidate pairs
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
