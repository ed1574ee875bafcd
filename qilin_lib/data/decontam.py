"""Decontamination: which benchmark test items have an exact or near duplicate in a training corpus.

    check = ContaminationCheck(test_sets, cfg.data.dedup, drop=False)
    for rec in check.filter("sft", kept_records): ...   # streams; drops contaminated records if `drop`
    check.as_dict()                                      # data_stats.json["decontamination"]

The repo's dedup engine (qilin_lib.data.dedup) decides what a duplicate is, with the profile's settings:
the same normalised text (exact) or a MinHash-LSH candidate that passes the n-gram, order and character
tests (near; texts under `min_chars` are compared exactly only). The test items are small, so they are the
index and the corpus streams past it: each kept training record is looked up (`Deduplicator.query`, which
keeps nothing) batch by batch as deduplication passes them on, and then written or, with `drop`, left
out. Nothing of a corpus is held.

Two keys per test item, each its own index: the question, and the question with its answer (an exam
item's gold option texts, a QA pair's answer), each also in the layouts the data stage itself gives exam
and QA items (`item_texts`: with its options, as CPT text, as an SFT pair). A training record is looked
up through several texts (`training_units`): its whole dedup text and, for conversations and preference
pairs, each prompt and each prompt + response, so that an SFT pair built from a test item matches at the
granularity of the key.
What this does not find: a test question embedded in a much longer document (Jaccard over the whole
document is then small). Items of one set that duplicate each other count together (the engine keeps one
of them in the index); a training text near two distinct items counts for the most similar one.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, Iterable, Iterator

from ..config import DedupConfig
from . import chimed
from .dedup import Deduplicator

KEYS = {"question": "the question (alone, with its options, after 问：)",
        "question_answer": "the question with its answer (the gold options' texts; the exam item as a CPT text "
                           "or SFT pair; 问/答)"}
SNIPPET_CHARS = 80
BATCH_RECORDS = 512   # records looked up at a time (their texts are dropped after each batch)


# ------------------------------------------------------------------------------------------ texts
def item_texts(item: dict, key: str) -> list[str]:
    """The texts of a test item under `key`: the item alone and in the layouts the data stage gives exam
    and QA items (chimed.py), so that an item routed into a corpus matches exactly. `question`: the
    question; with its option lines (CMExam's prompt); after 问：. `question_answer`: the question, a newline
    and the answer (exam items: the gold options' texts); the exam item as CPT text / SFT pair (prompt,
    答案：X, 解释); the 问/答 pair."""
    question, options = item["question"], item.get("options")
    if key == "question":
        texts = [question, f"问：{question}"] + ([chimed.mcq_prompt(item)] if options else [])
    else:
        answer = item["answer"]
        if options:
            answer = "；".join(options[letter] for letter in answer if letter in options)
        texts = [f"{question}\n{answer}", chimed.qa_to_text({"question": question, "answer": answer})]
        if options:
            texts.append(chimed.mcq_to_text(item))
    return list(dict.fromkeys(texts))


def training_units(record: dict, corpus: str) -> list[str]:
    """The texts of a training record that a test item is compared with (distinct, non-empty)."""
    units = [chimed.dedup_text(record, corpus)]
    if corpus == "sft":
        messages = record["messages"]
        for i, m in enumerate(messages):
            if m["role"] == "user":
                units.append(m["content"])
                if i + 1 < len(messages) and messages[i + 1]["role"] == "assistant":
                    units.append(f"{m['content']}\n{messages[i + 1]['content']}")
    elif corpus == "dpo":
        units += [record["prompt"], f"{record['prompt']}\n{record['chosen']}"]
    return [u for u in dict.fromkeys(units) if u and u.strip()]


def benchmark_test_sets(cfg, evals: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """({benchmark: test items}, {benchmark: why it was not checked}) of a profile. The tiny profile's sets
    are the ones this stage generates (`evals`); other profiles load `data.benchmarks` with the
    evaluation's own loaders (no model code: they read files). A benchmark that cannot be read yet (not
    cloned, offline) is named with the reason in the report, not left out silently."""
    if cfg.data.generator == "tiny_kb":
        return {"cmexam": evals["cmexam"], "ceval": evals["ceval_val"], "huatuo26m": evals["qa"]}, {}
    from ..evaluation.benchmarks import load_benchmark

    sets, skipped = {}, {}
    for name in cfg.data.benchmarks:
        try:
            sets[name] = load_benchmark(cfg, name).items
        except Exception as exc:  # noqa: BLE001  (not cloned, offline, unreadable: any of them is reported)
            skipped[name] = f"{type(exc).__name__}: {exc}"[:300]
            warnings.warn(f"contamination check: benchmark {name!r} not checked ({skipped[name]})", stacklevel=2)
    return sets, skipped


# ------------------------------------------------------------------------------------------ index
class _ItemIndex:
    """One key's index over every test item of every benchmark (each item under all its `item_texts`).
    `members[e]`: the items that the kept entry e stands for (its own item and those of the entries it
    removed as their duplicates)."""

    def __init__(self, items: list[tuple[str, dict]], key: str, config: DedupConfig, tmp_dir):
        self.engine = Deduplicator(config, tmp_dir=tmp_dir)
        item_of, texts = [], []
        for i, (_, item) in enumerate(items):
            for text in item_texts(item, key):
                if not text.strip():
                    raise ValueError(f"benchmark item {item.get('id')!r} has an empty {key!r} text")
                item_of.append(i)
                texts.append(text)
        # The index keeps one entry of each duplicate group; an exact duplicate's first occurrence may
        # itself be a near duplicate, and an exact lookup names that first occurrence: follow to the kept one.
        self.kept_of: dict[int, int] = {}
        for d in self.engine.process(texts):
            self.kept_of[d.index] = d.index if d.keep else self.kept_of[d.dup_of]
        members: dict[int, set[int]] = {}
        for entry, kept in self.kept_of.items():
            members.setdefault(kept, set()).add(item_of[entry])
        self.members = {entry: sorted(found) for entry, found in members.items()}

    def matches(self, texts: list[str]) -> list[tuple[int, list[int], str, float | None]]:
        """(position in `texts`, matched item positions, "exact" | "near", similarity) per matching text."""
        return [(d.index, self.members[self.kept_of[d.dup_of]], d.reason, d.similarity)
                for d in self.engine.query(texts) if not d.keep]

    def close(self) -> None:
        self.engine.close()


class ContaminationCheck:
    """Test items indexed once; `filter` streams each corpus past them and tallies what matched."""

    def __init__(self, test_sets: dict[str, list[dict]], config: DedupConfig, *, drop: bool = False,
                 examples: int = 3, skipped: dict[str, str] | None = None, tmp_dir=None):
        # Near duplicates are looked for in every corpus, DPO included (whose own dedup is exact only).
        config = dataclasses.replace(config, exact=True, near=True)
        self.config, self.drop, self.examples = config, drop, examples
        self.items = [(bench, item) for bench, items in test_sets.items() for item in items]
        self.sizes = {bench: len(items) for bench, items in test_sets.items()}
        self.skipped = dict(skipped or {})
        self.indexes = {key: _ItemIndex(self.items, key, config, tmp_dir) for key in KEYS} if self.items else {}
        self.corpora: dict[str, dict] = {}

    def close(self) -> None:
        for index in self.indexes.values():
            index.close()

    def batch_filter(self, corpus: str) -> Callable[[list[dict]], list[dict]]:
        """A function batch -> the batch less its contaminated records when `drop`, tallying for `corpus`
        (the data stage hands it to the deduplication stream: `iter_dedup_records(kept_filter=...)`)."""
        tally = self.corpora[corpus] = {"records_checked": 0, "records_contaminated": 0, "records_dropped": 0,
                                        "matched": {key: {} for key in KEYS}}
        return lambda batch: self._batch(corpus, batch, tally)

    def filter(self, corpus: str, records: Iterable[dict]) -> Iterator[dict]:
        """The records in order, less the contaminated ones when `drop`, looked up BATCH_RECORDS at a time."""
        check, batch = self.batch_filter(corpus), []
        for rec in records:
            batch.append(rec)
            if len(batch) >= BATCH_RECORDS:
                yield from check(batch)
                batch = []
        yield from check(batch)

    def _batch(self, corpus: str, batch: list[dict], tally: dict) -> list[dict]:
        if not batch:
            return []
        tally["records_checked"] += len(batch)
        if not self.indexes:
            return batch
        owner, texts = [], []
        for r, rec in enumerate(batch):
            for unit in training_units(rec, corpus):
                owner.append(r)
                texts.append(unit)
        contaminated = set()
        for key, index in self.indexes.items():
            matched = tally["matched"][key]
            for pos, members, reason, similarity in index.matches(texts):
                contaminated.add(owner[pos])
                for i in members:
                    best = matched.get(i)
                    if best is None or (reason == "exact" and best["match"] == "near"):
                        matched[i] = {"match": reason, "similarity": similarity,
                                      "training_snippet": texts[pos][:SNIPPET_CHARS]}
        tally["records_contaminated"] += len(contaminated)
        if not self.drop:
            return batch
        tally["records_dropped"] += len(contaminated)
        return [rec for r, rec in enumerate(batch) if r not in contaminated]

    # -------------------------------------------------------------------------------------- report
    def as_dict(self) -> dict:
        """Per corpus and benchmark, per key: items, contaminated (exact / near), share, examples."""
        corpora = {}
        for corpus, tally in self.corpora.items():
            benches = {}
            for bench, size in self.sizes.items():
                benches[bench] = {key: self._figures(bench, size, tally["matched"][key]) for key in KEYS}
            corpora[corpus] = {k: tally[k] for k in ("records_checked", "records_contaminated",
                                                     "records_dropped")} | {"benchmarks": benches}
        return {"keys": dict(KEYS), "drop": self.drop, "benchmarks": dict(self.sizes),
                "not_checked": dict(self.skipped), "corpora": corpora,
                "settings": {k: getattr(self.config, k) for k in ("ngram", "num_perm", "lsh_threshold",
                                                                 "verify_threshold", "order_ratio",
                                                                 "char_threshold", "min_chars")}}

    def _figures(self, bench: str, size: int, matched: dict[int, dict]) -> dict:
        hits = sorted(i for i in matched if self.items[i][0] == bench)
        exact = sum(matched[i]["match"] == "exact" for i in hits)
        examples = [{"id": str(self.items[i][1].get("id", i)), **matched[i]} for i in hits[:self.examples]]
        return {"items": size, "contaminated": len(hits), "exact": exact, "near": len(hits) - exact,
                "share": round(len(hits) / size, 6) if size else None, "examples": examples}
