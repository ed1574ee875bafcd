"""DCPT inputs: documents -> token blocks of `block_size` (packed), or one padded row per document.

Packed (what DCPT trains on; run_clm's `group_texts`, as the Qilin-Med/MedicalGPT pretraining script does):

    doc1 tokens </s> doc2 tokens </s> doc3 ...  ->  [block 0][block 1]...   labels = input_ids

Every position of every block is a real token, so no compute is spent on padding. Both steps are
`datasets.map(batched=True)` calls: on a multi-GB corpus they stream through Arrow cache files instead of
holding the corpus in memory, in `num_proc` processes if asked (the blocks are the same for any number).
Like run_clm, the tail of each map batch that does not fill a whole block
is dropped (< block_size tokens per `group_batch_size` documents: 0.2% of the tiny corpus);
`packing_stats` reports that coverage beside the padding ratio. Documents are separated by EOS and not
isolated by the attention mask: a block may attend across a document boundary, as in GPT-style
pretraining; the EOS teaches the model where a text ends.

Padded (the benchmark's baseline): one document per row, truncated to block_size, padded to the longest
row of each batch by `PaddedCollator`, loss masked on padding. On short documents a large share of every
batch is padding (see `packing_efficiency`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

TEXT = "text"


def as_dataset(corpus):
    """A datasets.Dataset with a `text` column from a Dataset or an iterable of strings."""
    from datasets import Dataset

    if isinstance(corpus, Dataset):
        return corpus
    return Dataset.from_dict({TEXT: [str(t) for t in corpus]})


def _cache(cache_dir: str | Path | None, name: str) -> dict:
    """map() keywords: write the result under cache_dir (never next to the source dataset, which may be
    another stage's complete artifact) or, without a cache_dir, keep it in memory. The name carries the
    source's fingerprint: datasets loads an existing cache file of that name without further checks."""
    if cache_dir is None:
        return {"keep_in_memory": True}
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return {"cache_file_name": str(Path(cache_dir) / f"{name}.arrow")}


def tokenize_documents(corpus, tokenizer, *, max_length: int | None = None, cache_dir=None, num_proc=None,
                       batch_size: int = 1000, desc: str = "tokenize"):
    """One row per document: `input_ids` = the document's tokens + EOS (truncated to max_length, EOS kept).

    No BOS: a packed block starts mid-document anyway, and the tiny tokenizer adds none."""
    ds = as_dataset(corpus)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("packing needs a tokenizer with an eos token")

    def tokenize(batch):
        ids = tokenizer(batch[TEXT], add_special_tokens=False)["input_ids"]
        if max_length:
            ids = [row[: max_length - 1] for row in ids]
        return {"input_ids": [row + [eos] for row in ids]}

    name = f"tokenized-{max_length or 'full'}-{ds._fingerprint}"
    return ds.map(tokenize, batched=True, batch_size=batch_size, remove_columns=ds.column_names,
                  num_proc=num_proc, desc=desc, **_cache(cache_dir, name))


def group_texts(batch: dict, block_size: int) -> dict:
    """run_clm's group_texts: concatenate the batch's rows, cut into full blocks, labels = input_ids."""
    stream = [tok for row in batch["input_ids"] for tok in row]
    usable = len(stream) // block_size * block_size
    blocks = [stream[i: i + block_size] for i in range(0, usable, block_size)]
    return {"input_ids": blocks, "labels": [list(b) for b in blocks]}


def pack_tokenized(tokenized, block_size: int, *, cache_dir=None, num_proc=None, group_batch_size: int = 1000):
    """Tokenized documents (tokenize_documents) -> packed blocks (`input_ids`, `labels`, block_size each).

    Blocks are cut within groups of `group_batch_size` consecutive documents counted from the first (run_clm's
    map batches). `datasets.map(num_proc=n)` would split the documents into n shards and restart its batches
    at each shard's start, moving the cuts; so the map runs over the groups' start rows instead, each call
    packing one whole group, and any `num_proc` gives exactly the blocks of one process."""
    from datasets import Dataset

    starts = Dataset.from_dict({"start": list(range(0, len(tokenized), group_batch_size))})
    name = f"packed-{block_size}-{group_batch_size}-{tokenized._fingerprint}"
    # An explicit fingerprint: hashing the kwargs would serialise the whole tokenized corpus.
    return starts.map(_pack_groups, batched=True, batch_size=1, num_proc=num_proc, remove_columns=["start"],
                      fn_kwargs={"tokenized": tokenized, "block_size": block_size, "group_size": group_batch_size},
                      new_fingerprint=name, desc=f"pack into blocks of {block_size}", **_cache(cache_dir, name))


def _pack_groups(batch: dict, tokenized, block_size: int, group_size: int) -> dict:
    out: dict = {"input_ids": [], "labels": []}
    for start in batch["start"]:
        blocks = group_texts(tokenized[start: start + group_size], block_size)
        out["input_ids"] += blocks["input_ids"]
        out["labels"] += blocks["labels"]
    return out


def pack_dataset(corpus, tokenizer, block_size: int, *, cache_dir=None, num_proc=None,
                 group_batch_size: int = 1000):
    """Documents -> packed DCPT blocks in one call."""
    tokenized = tokenize_documents(corpus, tokenizer, cache_dir=cache_dir, num_proc=num_proc)
    return pack_tokenized(tokenized, block_size, cache_dir=cache_dir, num_proc=num_proc,
                          group_batch_size=group_batch_size)


@dataclass
class PaddedCollator:
    """Pad a batch of single documents to its longest row; labels -100 on padding (not on EOS, even when
    the tokenizer's pad token is its eos token, because the mask comes from the lengths)."""
    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, (f, n) in enumerate(zip(features, lengths)):
            ids[i, :n] = torch.as_tensor(f["input_ids"], dtype=torch.long)
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def padded_dataset(corpus, tokenizer, block_size: int, *, cache_dir=None, num_proc=None):
    """The dynamically padded variant: one document per row (+ EOS, at most block_size tokens)."""
    return tokenize_documents(corpus, tokenizer, max_length=block_size, cache_dir=cache_dir, num_proc=num_proc,
                              desc="tokenize (one document per row)")


# ------------------------------------------------------------------------------------------- stats
def row_lengths(ds) -> list[int]:
    """Tokens per row (before any padding) of a tokenized or packed dataset."""
    lengths = ds.map(lambda b: {"n": [len(x) for x in b["input_ids"]]}, batched=True, batch_size=10_000,
                     remove_columns=ds.column_names, keep_in_memory=True, desc="count tokens")
    return list(lengths["n"])


def packing_efficiency(lengths: Iterable[int], batch_size: int) -> float:
    """Share of the positions the model computes on that hold real tokens, not padding.

    `lengths`: real tokens per row, in the order the batches take them; each batch of `batch_size` rows
    is padded to its longest row (what PaddedCollator does). Packed blocks all have block_size real
    tokens, so their efficiency is 1.0 by construction; one document per row is far below."""
    lengths = list(lengths)
    computed = sum(max(lengths[i: i + batch_size]) * len(lengths[i: i + batch_size])
                   for i in range(0, len(lengths), batch_size))
    return sum(lengths) / computed if computed else 0.0


def packing_stats(tokenized, packed, block_size: int, batch_size: int, seed: int = 0) -> dict:
    """What packing did to a corpus: blocks, real-token share of the packed batches, the corpus tokens
    that made it into a block (coverage), and the efficiency the padded variant would have had with the
    same batch size (rows in a seeded random order, as the Trainer's sampler takes them)."""
    doc_lengths = row_lengths(tokenized)
    block_lengths = row_lengths(packed)
    order = torch.randperm(len(doc_lengths), generator=torch.Generator().manual_seed(seed)).tolist()
    corpus_tokens, block_tokens = sum(doc_lengths), sum(block_lengths)
    return {"documents": len(doc_lengths), "corpus_tokens": corpus_tokens, "blocks": len(block_lengths),
            "block_size": block_size, "block_tokens": block_tokens,
            "packing_efficiency": round(packing_efficiency(block_lengths, batch_size), 6),
            "token_coverage": round(block_tokens / corpus_tokens, 6) if corpus_tokens else 0.0,
            "padded_efficiency": round(packing_efficiency([min(doc_lengths[i], block_size) for i in order],
                                                          batch_size), 6)}
