"""qilin_lib.data.packing: documents -> EOS-separated packed blocks (DCPT), and the padded baseline."""

import random

import pytest
import torch

from qilin_lib.data import kg, packing
from qilin_lib.modeling import build_tiny_tokenizer


def kb_texts(n_rounds=3, seed=0):
    """Realistic DCPT documents: KG passages of the tiny knowledge base in a few styles."""
    rng = random.Random(seed)
    return [kg.entity_to_passage(e, rng, style=s) for s in range(n_rounds) for e in kg.kb_entities()]


@pytest.fixture(scope="module")
def texts():
    return kb_texts()


@pytest.fixture(scope="module")
def tokenizer(texts):
    return build_tiny_tokenizer(texts, vocab_size=800, model_max_length=256)


def test_group_texts_is_run_clm():
    out = packing.group_texts({"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9]]}, block_size=4)
    assert out["input_ids"] == [[1, 2, 3, 4], [5, 6, 7, 8]]  # the tail [9] is dropped
    assert out["labels"] == out["input_ids"]
    assert out["labels"][0] is not out["input_ids"][0]      # a copy, not an alias


def test_documents_end_with_eos_and_blocks_are_full(texts, tokenizer):
    tokenized = packing.tokenize_documents(texts, tokenizer)
    eos = tokenizer.eos_token_id
    for text, row in zip(texts[:50], tokenized["input_ids"][:50]):
        assert row[-1] == eos and eos not in row[:-1]
        assert tokenizer.decode(row[:-1]) == text
    packed = packing.pack_tokenized(tokenized, block_size=64)
    assert packed.column_names == ["input_ids", "labels"]
    assert all(len(b) == 64 for b in packed["input_ids"])
    assert packed["labels"] == packed["input_ids"]
    # the blocks are the documents' token stream cut in order: EOS between every two documents
    stream = [t for block in packed["input_ids"] for t in block]
    expected = [t for row in tokenized["input_ids"] for t in row]
    assert stream == expected[: len(stream)]
    assert stream.count(eos) >= len(texts) - 2
    assert tokenizer.decode(stream[: stream.index(eos)]) == texts[0]


def test_at_least_99_percent_real_tokens(texts, tokenizer):
    tokenized = packing.tokenize_documents(texts, tokenizer)
    packed = packing.pack_tokenized(tokenized, block_size=256)
    stats = packing.packing_stats(tokenized, packed, block_size=256, batch_size=8)
    assert stats["packing_efficiency"] >= 0.99
    assert stats["token_coverage"] >= 0.99          # at most one partial block dropped per map batch
    assert stats["block_tokens"] == stats["blocks"] * 256 <= stats["corpus_tokens"]
    assert stats["padded_efficiency"] < stats["packing_efficiency"]


def test_packing_efficiency_counts_padding():
    assert packing.packing_efficiency([4, 4, 4, 4], batch_size=2) == 1.0
    assert packing.packing_efficiency([1, 3, 2, 2], batch_size=2) == pytest.approx(8 / 10)
    assert packing.packing_efficiency([], batch_size=2) == 0.0


def test_padded_variant_masks_padding_only(texts, tokenizer):
    rows = packing.padded_dataset(texts[:6], tokenizer, block_size=16)
    assert all(len(r) <= 16 and r[-1] == tokenizer.eos_token_id for r in rows["input_ids"])
    # pad id = eos id (Llama/Baichuan convention): EOS still gets a label, padding does not
    batch = packing.PaddedCollator(pad_token_id=tokenizer.eos_token_id)(
        [{"input_ids": [5, 6, 1]}, {"input_ids": [7, 1]}])
    assert batch["input_ids"].tolist() == [[5, 6, 1], [7, 1, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[5, 6, 1], [7, 1, -100]]
    assert batch["input_ids"].dtype == torch.long


def test_streaming_cache_stays_in_cache_dir(tmp_path, texts, tokenizer):
    """A corpus loaded from disk (another stage's artifact) is never written next to: the map caches go
    to cache_dir, and a second call loads them instead of recomputing."""
    src = tmp_path / "corpus"
    packing.as_dataset(texts).save_to_disk(str(src))
    before = sorted(p.name for p in src.iterdir())
    from datasets import load_from_disk

    cache = tmp_path / "cache"
    first = packing.pack_dataset(load_from_disk(str(src)), tokenizer, 64, cache_dir=cache)
    assert sorted(p.name for p in src.iterdir()) == before
    assert len(list(cache.glob("packed-64-*.arrow"))) == 1
    second = packing.pack_dataset(load_from_disk(str(src)), tokenizer, 64, cache_dir=cache)
    assert second["input_ids"] == first["input_ids"]
    assert second.cache_files[0]["filename"] == first.cache_files[0]["filename"]


def test_num_proc_packs_the_blocks_of_one_process(texts, tokenizer):
    """Worker processes split the documents into shards; the cuts stay those of groups of group_batch_size
    documents counted from the first (70 here, so that neither shard boundary of 300 documents falls on one)."""
    tokenized = packing.tokenize_documents(texts, tokenizer)
    assert len(texts) == 300
    assert packing.tokenize_documents(texts, tokenizer, num_proc=2)["input_ids"] == tokenized["input_ids"]
    one = packing.pack_tokenized(tokenized, block_size=64, group_batch_size=70)
    two = packing.pack_tokenized(tokenized, block_size=64, group_batch_size=70, num_proc=2)
    assert two["input_ids"] == one["input_ids"] and two["labels"] == one["labels"]
    rows = tokenized["input_ids"]
    expected = [block for start in range(0, len(rows), 70)
                for block in packing.group_texts({"input_ids": rows[start: start + 70]}, 64)["input_ids"]]
    assert one["input_ids"] == expected
