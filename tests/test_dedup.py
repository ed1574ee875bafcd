"""Deduplication (Lee et al. 2022 style): normalisation, exact and near duplicates, the vectorised MinHash.

Synthetic corpora only (seeded random CJK text and templated texts that differ in content); the real-data
measurements live in benchmarks/bench_dedup.py.
"""

from __future__ import annotations

import collections
import random

import numpy as np
import pytest

from qilin_lib.config import DedupConfig
from qilin_lib.data.dedup import (EMPTY, Deduplicator, LSHIndex, MinHasher, char_multiset_sketch,
                                  dedup_records, dedup_stream, exact_hash, iter_dedup_records,
                                  normalize_batch, normalize_text, optimal_param, order_sketch,
                                  shingles, sketch_jaccard)

CJK = (0x4E00, 0x9FA5)


def cjk(rng: random.Random, n: int) -> str:
    return "".join(chr(rng.randint(*CJK)) for _ in range(n))


def edit(text: str, rate: float, rng: random.Random) -> str:
    """Edit round(rate * len) characters: substitutions, insertions, deletions with random CJK."""
    chars = list(text)
    for k in range(round(rate * len(chars))):
        p = rng.randrange(len(chars))
        op = k % 3
        if op == 0:
            chars[p] = chr(rng.randint(*CJK))
        elif op == 1:
            chars.insert(p, chr(rng.randint(*CJK)))
        else:
            del chars[p]
    return "".join(chars)


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"}
TEMPLATE = ("{d}是一种常见疾病，主要症状包括{s1}、{s2}和{s3}。患者应到{dept}就诊，"
            "常用检查有{e1}和{e2}，治疗药物包括{m1}及{m2}。")


@pytest.fixture(scope="module")
def corpus():
    """(records, expected) where expected maps removed index -> (reason, index of the original)."""
    rng = random.Random(7)
    base = [{"text": cjk(rng, rng.randint(120, 400)), "source": "random"} for _ in range(60)]
    paragraphs = (cjk(rng, 120), cjk(rng, 150))
    base[5]["text"] = "\n".join(paragraphs)                    # two paragraphs
    # templated documents: same boilerplate, different content (must all be kept)
    for _ in range(30):
        fields = {k: cjk(rng, rng.randint(3, 6)) for k in ("d", "s1", "s2", "s3", "dept", "e1", "e2", "m1", "m2")}
        base.append({"text": TEMPLATE.format(**fields), "source": "template"})
    base.append({"text": "Fever and Cough: see a Doctor, take 2 tablets daily，多喝水。", "source": "mixed"})
    records = list(base)
    expected: dict[int, tuple[str, int]] = {}

    def plant(text: str, reason: str, of: int, source: str = "copies") -> None:
        expected[len(records)] = (reason, of)
        records.append({"text": text, "source": source})

    plant(base[3]["text"], "exact", 3)
    plant("  " + paragraphs[0] + " \r\n\n\t " + paragraphs[1] + " \u3000", "exact", 5)
    mixed = len(base) - 1
    plant("".join(FULLWIDTH.get(c, c) for c in base[mixed]["text"]).replace(",", "，"), "exact", mixed)
    plant(base[mixed]["text"].upper().replace("。", "."), "exact", mixed)
    for i, rate in [(10, 0.05), (11, 0.08), (12, 0.10), (13, 0.12), (14, 0.15), (15, 0.15), (60, 0.05)]:
        plant(edit(base[i]["text"], rate, rng), "near", i)
    # a second near copy of 12 (found as a copy of 12, not of the first copy, which was removed)
    plant(edit(base[12]["text"], 0.10, rng), "near", 12)
    # short documents: an exact copy is removed, an edited copy is kept (only exact dedup below min_chars)
    records.append({"text": "头痛发热三天", "source": "short"})
    short = len(records) - 1
    plant("头痛发热三天 ", "exact", short, source="short")
    records.append({"text": "头痛发热四天", "source": "short"})
    records.append({"text": cjk(rng, 200), "source": "random"})        # one more unrelated document
    return records, expected


def removed(decisions) -> dict[int, tuple[str, int]]:
    return {d.index: (d.reason, d.dup_of) for d in decisions if not d.keep}


# ------------------------------------------------------------------------------------ normalisation
def test_normalize_text_folds_width_case_whitespace_and_cjk_punctuation():
    assert normalize_text("  Ｆｅｖｅｒ，38℃…\n\n 头痛。\u3000「咳嗽」 ") == 'fever,38°c... 头痛. "咳嗽"'
    assert normalize_text("A\tB\r\nC") == "a b c"
    assert exact_hash(normalize_text("你好，世界")) == exact_hash(normalize_text(" 你好,世界 "))


def test_normalize_batch_equals_the_reference_on_every_bmp_character_in_context():
    rng = random.Random(0)
    every = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["", "   ", " a ", "e\u0301", "한글 ᄀ\u1161", "体温38℃…Ⅱ型 ㎎", "\U00020000 x", "ﬁ ß"]
    texts += ["".join(every[k:k + 97]) for k in range(0, len(every), 97)]        # every character
    texts += [" ".join(every[k:k + 97][::-1]) for k in range(0, len(every), 97)]
    pool = " \t\n\u3000，。、ABCabc你好…℃"
    texts += ["".join(rng.choice(every) if rng.random() < 0.3 else rng.choice(pool)
                      for _ in range(rng.randint(0, 15))) for _ in range(3000)]
    codes, lengths = normalize_batch(texts)
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    got = [codes[bounds[i]:bounds[i + 1]].tobytes().decode("utf-32-le", "surrogatepass") for i in range(len(texts))]
    assert got == [normalize_text(t) for t in texts]


# -------------------------------------------------------------------------------------- dedup rules
def test_planted_duplicates_are_exactly_the_removed_ones(corpus):
    records, expected = corpus
    decisions = list(dedup_stream([r["text"] for r in records]))
    assert removed(decisions) == expected
    near = [d for d in decisions if d.reason == "near"]
    assert all(0.15 <= d.similarity <= 1 for d in near)


def test_templated_documents_with_different_content_are_kept(corpus):
    records, _ = corpus
    kept, report = dedup_records(records, progress=False)
    assert report.per_source["template"].kept == report.per_source["template"].total == 30
    # and they do share boilerplate: some pairs are LSH candidates with a 5-gram Jaccard near 0.2
    templ = [normalize_text(r["text"]) for r in records if r["source"] == "template"]
    sims = [jaccard(shingles(a), shingles(b)) for a in templ[:10] for b in templ[10:20]]
    assert max(sims) > 0.1


def test_report_counts_per_source_and_as_dict(corpus):
    records, expected = corpus
    kept, report = dedup_records(records, progress=False)
    assert report.total == len(records) and report.kept == len(kept) == len(records) - len(expected)
    assert report.exact_removed == sum(r == "exact" for r, _ in expected.values()) == 5
    assert report.near_removed == sum(r == "near" for r, _ in expected.values()) == 8
    copies = report.per_source["copies"]
    assert (copies.total, copies.exact_removed, copies.near_removed, copies.kept) == (12, 4, 8, 0)
    short = report.per_source["short"]
    assert (short.total, short.exact_removed, short.near_removed, short.kept, short.short) == (3, 1, 0, 2, 3)
    d = report.as_dict()
    assert d["per_source"]["random"]["kept"] == 61
    assert d["thresholds"]["bands"] * d["thresholds"]["rows"] <= d["config"]["num_perm"]
    assert d["thresholds"]["verify_threshold"] == DedupConfig().verify_threshold
    assert "seconds" not in d                      # as_dict is deterministic (timing stays on the object)
    assert [r["text"] for r in kept] == [r["text"] for i, r in enumerate(records) if i not in expected]


def test_short_texts_are_only_exact_deduplicated():
    long_text = "发热、咳嗽、咽痛三天，体温最高三十九度，伴乏力"
    texts = ["头痛发热三天", "头痛发热四天", "头痛发热三天", long_text, long_text[:-1] + "们"]
    decisions = list(dedup_stream(texts, DedupConfig(min_chars=20)))
    assert [d.keep for d in decisions] == [True, True, False, True, False]
    assert [d.short for d in decisions] == [True, True, True, False, False]
    decisions = list(dedup_stream(texts, DedupConfig(min_chars=100)))   # now all are short
    assert [d.keep for d in decisions] == [True, True, False, True, True]


def test_reordered_restatements_are_not_near_duplicates():
    rng = random.Random(3)
    facts = [f"{cjk(rng, 4)}方面，{cjk(rng, 12)}。" for _ in range(8)]
    texts = ["".join(facts)]
    for _ in range(5):
        rng.shuffle(facts)
        texts.append("".join(facts))
    assert all(d.keep for d in dedup_stream(texts))
    loose = DedupConfig(order_ratio=0, char_threshold=0)           # 5-gram Jaccard alone
    assert not all(d.keep for d in dedup_stream(texts, loose))


def test_generator_input_batches_and_determinism(corpus):
    records, expected = corpus
    gen = (r for r in records)                     # a generator, no len()
    kept_gen, rep_gen = dedup_records(gen, progress=False)
    kept, rep = dedup_records(records, progress=False)
    assert kept_gen == kept and rep_gen.as_dict() == rep.as_dict()
    small = DedupConfig(batch_size=7)              # the same decisions across batch boundaries
    assert removed(dedup_stream((r["text"] for r in records), small)) == expected
    tiny_chars = DedupConfig(batch_chars=500)
    assert removed(dedup_stream((r["text"] for r in records), tiny_chars)) == expected
    again = list(dedup_stream([r["text"] for r in records]))
    assert again == list(dedup_stream([r["text"] for r in records]))
    other_seed = list(dedup_stream([r["text"] for r in records], DedupConfig(seed=2)))
    assert removed(other_seed) == expected


def test_text_key_callable_iter_variant_and_progress_bar(corpus, capsys):
    records, expected = corpus
    wrapped = [{"messages": [{"content": r["text"][:30]}, {"content": r["text"][30:]}], "source": r["source"]}
               for r in records]
    join = lambda r: "".join(m["content"] for m in r["messages"])  # noqa: E731
    kept, report = dedup_records(wrapped, text_key=join, progress=True)
    assert report.exact_removed + report.near_removed == len(expected)
    assert "dedup" in capsys.readouterr().err
    from qilin_lib.data.dedup import DedupReport
    rep = DedupReport()
    it = iter_dedup_records(records, progress=False, report=rep)
    first = next(it)
    assert first is records[0] and rep.total >= 1
    rest = list(it)
    assert len(rest) + 1 == rep.kept == len(records) - len(expected)


def test_state_grows_with_documents_not_with_their_length():
    rng = random.Random(11)
    texts = [cjk(rng, 300) for _ in range(300)]

    def state(items):
        dd = Deduplicator()
        for _ in dedup_stream(items, deduplicator=dd):
            pass
        return dd.nbytes

    one, doubled, half = state(texts), state([t + t for t in texts]), state(texts[:150])
    assert one == doubled
    assert 0.4 < half / one < 0.6


def test_disabled_stages():
    texts = ["同一段足够长的文字，用来检查去重开关是否生效。", "同一段足够长的文字，用来检查去重开关是否生效。"]
    assert [d.keep for d in dedup_stream(texts, DedupConfig(exact=False, near=False))] == [True, True]
    assert [d.reason for d in dedup_stream(texts, DedupConfig(exact=False))] == ["kept", "near"]


# ---------------------------------------------------------------------------------------- MinHash
@pytest.fixture(scope="module")
def pairs():
    rng = random.Random(5)
    out = []
    for rate in (0.02, 0.05, 0.10, 0.15, 0.30):
        a = cjk(rng, 500)
        out.append((a, edit(a, rate, rng)))
    a = "".join(rng.choice("的了是在有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动") for _ in range(400))
    out.append((a, edit(a, 0.1, rng)))                    # common characters: many repeated 5-grams
    return out


def test_minhash_estimates_agree_with_true_jaccard_and_with_datasketch(pairs):
    from datasketch import MinHash

    mh = MinHasher(num_perm=128, ngram=5, seed=1)
    for a, b in pairs:
        sa, sb = shingles(a), shingles(b)
        truth = jaccard(sa, sb)
        sig = mh.signatures([a, b])
        ours = float(MinHasher.jaccard(sig[0], sig[1]))
        ma, mb = MinHash(num_perm=128, seed=1), MinHash(num_perm=128, seed=1)
        ma.update_batch([s.encode("utf8") for s in sa])
        mb.update_batch([s.encode("utf8") for s in sb])
        theirs = ma.jaccard(mb)
        assert abs(ours - truth) < 0.1, (ours, truth)
        assert abs(theirs - truth) < 0.1, (theirs, truth)
        assert abs(ours - theirs) < 0.15


def test_minhash_signatures_are_exact_on_identity_and_independent_of_batching(pairs):
    mh = MinHasher(num_perm=64, seed=3)
    texts = [t for pair in pairs for t in pair] + ["abcd", ""]          # two without any 5-gram
    sig = mh.signatures(texts)
    assert sig.shape == (len(texts), 64) and sig.dtype == np.uint32
    assert (sig[-1] == 0xFFFFFFFF).all() and (sig[-2] == 0xFFFFFFFF).all()
    one_by_one = np.stack([mh.signatures([t])[0] for t in texts])
    assert (one_by_one == sig).all()
    small = MinHasher(num_perm=64, seed=3, chunk=100)                    # documents span chunks
    assert (small.signatures(texts) == sig).all()
    assert (mh.signatures(texts[:1] * 2)[0] == mh.signatures(texts[:1] * 2)[1]).all()
    assert not (MinHasher(num_perm=64, seed=4).signatures(texts[:1]) == sig[:1]).all()


def test_character_and_order_sketches(pairs):
    for a, b in pairs:
        codes, lengths = normalize_batch([a, b])
        sk = char_multiset_sketch(codes, lengths, bins=128)
        ca, cb = collections.Counter(a), collections.Counter(b)
        truth = sum((ca & cb).values()) / sum((ca | cb).values())
        assert abs(float(sketch_jaccard(sk[0], sk[1])) - truth) < 0.1
        keys, counts = MinHasher().ngram_keys(codes, lengths)
        order = order_sketch(keys, counts, buckets=8, bins=128)
        assert float(sketch_jaccard(order[0], order[1])) >= 0.8 * jaccard(shingles(a), shingles(b)) - 0.1
    codes, lengths = normalize_batch(["", "abc"])
    empty = char_multiset_sketch(codes, lengths, bins=16)
    assert (empty[0] == EMPTY).all() and (empty[1] != EMPTY).sum() <= 3


def test_optimal_param_matches_datasketch_and_lsh_finds_identical_signatures():
    from datasketch.lsh import _optimal_param

    for t in (0.1, 0.2, 0.5, 0.8):
        assert optimal_param(t, 128) == _optimal_param(t, 128, 0.5, 0.5)
    lsh = LSHIndex(num_perm=128, threshold=0.1)
    assert (lsh.bands, lsh.rows) == (64, 2)
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(50, 128), dtype=np.uint64).astype(np.uint32)
    lsh.insert(lsh.keys(sigs[:40]), np.arange(40))
    lsh.insert(lsh.keys(sigs[40:45]), np.arange(40, 45))
    query = sigs[[3, 42, 47]].copy()
    query[0, 100:] = 0                                  # still shares its first 50 bands
    rows, slots = lsh.query(lsh.keys(query))
    assert sorted(zip(rows.tolist(), slots.tolist())) == [(0, 3), (1, 42)]
