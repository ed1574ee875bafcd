"""Retrieval-augmented answering (Qilin-Med v2 "Qilin-Med-RAG"). OUR PROTOCOL: the paper does not publish
its retriever.

Ours: BM25 (the `bm25s` library, Lucene's BM25 variant, k1 1.5, b 0.75) over the knowledge corpus the
data stage built, on jieba word tokens (whitespace and punctuation-only tokens dropped). The top-k
passages, each cut to `max_chars` characters, are prepended to the benchmark prompt under RAG_HEADER;
the query is the question text without its options. The index is built once per data artifact and
cached in the artifact store.

Knowledge corpus: the ChiMed-CPT records of the `kg` and `text` subsets (knowledge-graph passages and
encyclopedia/textbook text); dialogues and QA posts are left out because they restate knowledge less
densely. On the tiny profile these passages only describe taught diseases, so retrieval can help the
taught questions and has nothing to offer the control ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

RAG_HEADER = "以下是检索到的医学知识，仅供参考：\n"
KNOWLEDGE_SUBSETS = ("kg", "text")
_PUNCT = re.compile(r"^[\W_]+$")


def jieba_terms(text: str) -> list[str]:
    """The metrics' jieba words (whitespace dropped) without punctuation-only tokens (they match everything)."""
    from .metrics.tokens import jieba_tokens

    return [w for w in jieba_tokens(text) if not _PUNCT.match(w)]


class BM25Retriever:
    """`BM25Retriever.build(passages).search("糖尿病用什么药", k=2)` -> [(passage, score), ...]."""

    def __init__(self, passages: Sequence[str], index):
        self.passages, self.index = list(passages), index
        self.vocab = set(index.vocab_dict)

    @classmethod
    def build(cls, passages: Sequence[str]) -> BM25Retriever:
        import bm25s

        if not passages:
            raise ValueError("the RAG knowledge corpus is empty")
        index = bm25s.BM25()
        index.index([jieba_terms(p) or ["<empty>"] for p in passages], show_progress=False)
        return cls(passages, index)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.index.save(str(directory / "bm25"))
        (directory / "passages.json").write_text(json.dumps(self.passages, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> BM25Retriever:
        import bm25s

        directory = Path(directory)
        passages = json.loads((directory / "passages.json").read_text("utf-8"))
        return cls(passages, bm25s.BM25.load(str(directory / "bm25")))

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """The k best passages with a positive score (fewer when the query shares few terms)."""
        terms = [t for t in jieba_terms(query) if t in self.vocab]  # bm25s rejects unknown terms
        if not terms or k <= 0:
            return []
        docs, scores = self.index.retrieve([terms], k=min(k, len(self.passages)), show_progress=False)
        return [(self.passages[int(d)], round(float(s), 4)) for d, s in zip(docs[0], scores[0]) if s > 0]


def rag_prompt(prompt: str, passages: Sequence[str], max_chars: int) -> str:
    """The benchmark prompt with the retrieved passages in front of it (unchanged when none)."""
    if not passages:
        return prompt
    lines = [f"[{i}] {p[:max_chars]}" for i, p in enumerate(passages, 1)]
    return RAG_HEADER + "\n".join(lines) + "\n\n" + prompt


def knowledge_retriever(cfg, force: bool = False) -> BM25Retriever:
    """The BM25 index over the data stage's knowledge corpus, built once per data artifact."""
    from ..cache import StageArtifact
    from ..data.stage import data_artifact, load_corpus

    data = data_artifact(cfg)
    if not data.complete:
        raise FileNotFoundError(f"no complete data artifact for profile {cfg.name!r}: run notebook 01 first")
    art = StageArtifact(cfg.name, "rag_index", config={"subsets": KNOWLEDGE_SUBSETS, "tokenizer": "jieba",
                                                        "library": "bm25s"},
                        inputs={"data": data.manifest["output_hash"]})
    if not art.complete or force:
        cpt = load_corpus(cfg, "cpt")
        passages = [r["text"] for r in cpt if r.get("subset") in KNOWLEDGE_SUBSETS]
        with art.writing() as out:
            BM25Retriever.build(passages).save(out)
    return BM25Retriever.load(art.path)
