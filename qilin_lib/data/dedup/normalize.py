"""What duplicates are judged on: the normalised text, its exact-match key, and the same normalisation
vectorised over a batch.

`normalize_text` is the reference definition (the rules are listed in the package docstring);
`normalize_batch` must return exactly the same code points, only faster: per-character lookup tables
let numpy normalise a whole batch at once, which is most of what keeps deduplication at several MB/s.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any, Sequence

import numpy as np

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
    """64-bit BLAKE2b digest of the normalised text (as UTF-32-LE): the key of the exact stage (the
    little-endian uint64 that `exact.text_hashes` computes for a batch; collisions: see exact.py)."""
    return hashlib.blake2b(normalized.encode("utf-32-le", "surrogatepass"), digest_size=8).digest()


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


def _as_str(x: Any) -> str:
    """A text field that holds None or a non-string is compared as its string (None as ""), so one odd
    record never stops a stream."""
    return x if x.__class__ is str else ("" if x is None else str(x))
