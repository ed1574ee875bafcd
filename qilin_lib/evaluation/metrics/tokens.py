"""Tokenisers the metrics are computed on (DESIGN.md section 4).

- `char_tokens`: one token per character, whitespace dropped. Huatuo-26M's tokenisation is undocumented, so
  its BLEU/GLEU/ROUGE/Distinct are on characters; CMExam's ROUGE is on characters too (its scripts join
  `list(text)` with spaces before nmt's rouge splits them again).
- `jieba_tokens`: jieba words, as CMExam's explanation BLEU (`jieba.cut(item, cut_all=False)`).

Whitespace is dropped in both: a space between two Chinese phrases is layout, not content, and keeping it
would only add matches on " " tokens.
"""

from __future__ import annotations

import logging

import jieba

jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict" banner in every notebook and test


def char_tokens(text: str) -> list[str]:
    """Characters of `text`, whitespace removed."""
    return [ch for ch in text if not ch.isspace()]


def jieba_tokens(text: str) -> list[str]:
    """`jieba.lcut(text)` (accurate mode, HMM on, as `jieba.cut(..., cut_all=False)`), whitespace tokens dropped."""
    return [tok for tok in jieba.lcut(text) if tok.strip()]
