"""Banded LSH over MinHash signatures: candidate pairs are documents that agree on a whole band.

`optimal_param` picks bands x rows for a threshold as datasketch does. The index is sorted numpy runs
rather than a dict of buckets (8 bytes an entry, batch queries by `np.searchsorted`), and the caps
`max_bucket` / `max_candidates` bound the verification work of documents that share boilerplate with
many others.
"""

from __future__ import annotations

import functools
import mmap
from typing import NamedTuple

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
    bands share one key space). Inserted entries live in sorted runs merged like a binary counter
    (log-structured), so a batch query is a few `np.searchsorted` calls. Slots are the caller's ids
    (increasing with insertion order).

    An entry is ONE uint64 (8 bytes): the top bits of its key with the slot's offset in its run below
    them, `slot_bits` = the bits a run needs for its slot range (11 for a batch of 2000 documents, 24 for
    a run of 16M), so a run sorts by (key prefix, slot) as one integer. Keys are compared on their top
    64 - slot_bits bits: a lookup can meet an unrelated entry whose key shares that prefix, with
    probability E / 2^(64 - slot_bits) for E distinct keys in the run (64 per kept document). With 1M
    kept documents (E = 6.4e7, slot_bits <= 20) that is 3.6e-6 per lookup, 2.3e-4 per document (64
    lookups); with 20M (slot_bits 25) 0.15 per document. Such an extra candidate is verified on the
    sketches like any other, so it changes a decision only if it also passes verification (then it is a
    real near duplicate that no full key found), or if it displaces a real candidate from the
    `max_bucket` / `max_candidates` caps. tests/test_dedup_state.py checks on ChiMed-layout workloads
    that decisions equal those of the 64-bit keys this index used before (12 bytes an entry).

    The run structure (which entries share a run) decides which `max_bucket` entries a lookup reads, so
    runs merge exactly as before: the last two whenever the newer holds at least half as many entries.
    A merge writes both runs into a fresh array chunk by chunk, giving each chunk's pages back as it goes,
    and sorts in place, so it never holds both runs and a merged copy at once.
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
        self._runs: list[_Run] = []
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
        at most `max_bucket` slots (the earliest inserted) per band key and run, and keeping at most
        `max_candidates` slots per row (those sharing the most bands, then the earliest)."""
        return self.query_sorted(*self.sort_keys(keys))

    def query_sorted(self, skeys: np.ndarray, srows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`query` for keys already sorted by `sort_keys` (sorted queries make searchsorted cheap)."""
        rows_out, slots_out = [], []
        for run in self._runs:
            mask = _U64((1 << run.slot_bits) - 1)
            lo = skeys & ~mask                                  # the run's key prefix, slot offset 0
            left = np.searchsorted(run.entries, lo, side="left")
            found = (run.entries[np.minimum(left, len(run.entries) - 1)] & ~mask) == lo
            hit = np.flatnonzero(found)
            if not len(hit):
                continue
            start = left[hit]
            end = np.searchsorted(run.entries, lo[hit] | mask, side="right")
            c = np.minimum(end - start, self.max_bucket)
            pos = np.repeat(start - (np.cumsum(c) - c), c) + np.arange(int(c.sum()), dtype=np.int64)
            rows_out.append(np.repeat(srows[hit], c))
            slots_out.append((run.entries[pos] & mask).astype(np.int64) + run.base)
        if not rows_out:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return _top_pairs(np.concatenate(rows_out), np.concatenate(slots_out), self.max_candidates)

    def insert(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """Insert documents: band keys of shape (n, bands) and their slots (increasing)."""
        if len(keys):
            skeys, srows = self.sort_keys(keys)
            self.insert_sorted(skeys, np.asarray(slots, dtype=np.int64)[srows], len(keys))

    def insert_sorted(self, skeys: np.ndarray, sslots: np.ndarray, n_docs: int) -> None:
        """Insert keys already sorted (slots ascending within a key), e.g. a filtered `sort_keys` output.
        Slots must exceed every slot inserted before (they grow with insertion order)."""
        if not len(skeys):
            return
        sslots = np.asarray(sslots, dtype=np.int64)
        base, top = int(sslots.min()), int(sslots.max())
        if self._runs and base <= self._runs[-1].top:
            raise ValueError(f"LSHIndex slots must increase with insertion: got {base} after "
                             f"{self._runs[-1].top}")
        bits = _slot_bits(top - base)
        entries = (skeys & ~_U64((1 << bits) - 1)) | (sslots - base).astype(np.uint64)
        entries.sort()                     # equal prefixes: slot order (sort_keys ordered rows by key only)
        self._runs.append(_Run(entries, base, top, bits))
        self.size += n_docs
        # merge runs of similar size (as the 64-bit runs did, so each lookup reads the same entries)
        while len(self._runs) > 1 and len(self._runs[-1].entries) * 2 >= len(self._runs[-2].entries):
            self._runs.append(_merge(self._runs.pop(-2), self._runs.pop()))

    @property
    def nbytes(self) -> int:
        return sum(run.entries.nbytes for run in self._runs)


class _Run(NamedTuple):
    entries: np.ndarray        # sorted uint64: key prefix (64 - slot_bits bits) | slot - base
    base: int                  # smallest slot
    top: int                   # largest slot
    slot_bits: int


def _slot_bits(span: int) -> int:
    bits = max(1, int(span).bit_length())
    if bits > 40:
        raise ValueError(f"LSHIndex: a run spans {span + 1} slots; at most 2^40 are supported")
    return bits


def _merge(older: _Run, newer: _Run, chunk: int = 1 << 18) -> _Run:
    """One run holding both (all of older's slots are smaller), re-packed with the bits the merged slot
    range needs, without holding the index twice: the merged array is a fresh anonymous memory map
    (its pages become resident only as they are written), each `chunk` of the two runs is re-packed into
    it and then given back (`_release`), and the result is sorted in place. Peak: the index plus a chunk.
    (The 64-bit runs were concatenated and argsorted: three times the index for a moment; growing the
    older array with ndarray.resize copies it.) The caller must hold no reference to either run."""
    base, old_bits, head = older.base, older.slot_bits, older.entries
    shift, new_bits, top, tail = _U64(newer.base - base), newer.slot_bits, newer.top, newer.entries
    del older, newer
    bits = _slot_bits(top - base)
    keep_key, old_mask, new_mask = (~_U64((1 << bits) - 1), _U64((1 << old_bits) - 1),
                                    _U64((1 << new_bits) - 1))
    n_old = len(head)
    entries = _anonymous(n_old + len(tail))
    for s in range(0, n_old, chunk):
        v = head[s:s + chunk]
        entries[s:s + len(v)] = (v & keep_key) | (v & old_mask)
        _release(head, s, s + len(v))
    del head, v
    for s in range(0, len(tail), chunk):
        v = tail[s:s + chunk]
        entries[n_old + s:n_old + s + len(v)] = (v & keep_key) | ((v & new_mask) + shift)
        _release(tail, s, s + len(v))
    del tail
    entries.sort()
    return _Run(entries, base, top, bits)


def _anonymous(n: int) -> np.ndarray:
    """An uninitialised uint64 array on an anonymous memory map of its own (its pages can be given back
    one range at a time, `_release`)."""
    if n * 8 < mmap.PAGESIZE * 16:
        return np.empty(n, np.uint64)
    return np.frombuffer(mmap.mmap(-1, n * 8), dtype=np.uint64)


def _release(arr: np.ndarray, start: int, stop: int) -> None:
    """Give the whole pages under arr[start:stop] back to the OS (an `_anonymous` array that is no longer
    read there; a no-op for other arrays and where madvise is missing)."""
    mm = arr.base.obj if isinstance(arr.base, memoryview) else arr.base     # (np.frombuffer's base)
    if not isinstance(mm, mmap.mmap) or not hasattr(mm, "madvise"):
        return
    page = mmap.PAGESIZE
    lo, hi = -(-start * 8 // page) * page, stop * 8 // page * page
    if hi > lo:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


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
