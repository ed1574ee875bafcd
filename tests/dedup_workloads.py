"""Deterministic dedup workloads and the decisions the engine gave on them before its state was compacted.

The engine's state moved from Python objects and in-RAM rows (commit 9fa536b: a dict of 128-bit exact hashes,
a uint16 row array, 64-bit LSH keys) to sorted numpy runs and rows on disk. The decisions must not change:
`tests/data/dedup_reference.json.gz` holds those of the 9fa536b engine on the workloads below, and
tests/test_dedup_state.py compares the current engine with them.

Workloads (the texts the data stage deduplicates, see chimed.dedup_text):
- cpt / sft: the real ChiMed-layout sample (../shared/data/chimed_format; skipped when absent) grown as
  benchmarks/bench_data.py grows it: the sample, then copies in which each document is an exact copy (10%,
  some of them whitespace / full-width / case variants that normalise equal), a near copy with 5-15% of its
  characters substituted (20%) or a distinct document with half its characters substituted (70%);
- templated: synthetic medical templates that differ only in short fields (many documents share LSH bands,
  so the caps max_bucket / max_candidates bind), with planted exact and edited copies, and short texts.
Each runs under the default DedupConfig and a "stress" one (small batches: many LSH runs and merges; caps
of 3 slots per bucket and 4 candidates per document, so that the candidate truncation is exercised).

Regenerate the reference only from the old engine (the point is to compare against it):
    git worktree add /tmp/base 9fa536b
    PYTHONPATH=/tmp/base python tests/dedup_workloads.py --write tests/data/dedup_reference.json.gz
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import sys
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).resolve().parent / "data" / "dedup_reference.json.gz"
CONFIGS = {
    "default": {},
    "stress": {"batch_size": 250, "batch_chars": 60_000, "max_bucket": 3, "max_candidates": 4},
}
FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"}
TEMPLATES = (
    "{a}是一种常见疾病，主要症状包括{b}、{c}和{d}。患者应到{e}就诊，常用检查有{f}和{g}，治疗药物包括{h}及{i}。",
    ("问：{a}患者出现{b}怎么办？答：建议尽快到{e}就诊，完善{f}、{g}等检查，在医生指导下使用{h}或{i}，注意休息，"
     "避免{c}，饮食清淡，多饮水。"),
    "以下哪项是{a}的典型表现？A. {b} B. {c} C. {d} D. {e} E. {f}。答案：{g}。解析：{a}常见于{h}人群，{i}。",
)


def shared_sample() -> Path | None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    path = Path(os.environ.get("QILIN_SHARED_DATA") or default) / "chimed_format"
    return path if path.is_dir() else None


def _exact_variant(text: str, rng: random.Random) -> str:
    """A text that normalises to the same string (NFKC width, case, whitespace)."""
    kind = rng.randrange(4)
    if kind == 0:
        return text
    if kind == 1:
        return "  " + text.replace("，", " ，", 1) + " \u3000"
    if kind == 2:
        return "".join(FULLWIDTH.get(c, c) for c in text)
    return text.upper()


def _grow(docs: list[str], copies: int, seed: int) -> list[str]:
    """The documents, then `copies` perturbed copies (exact 10% / near 5-15% / distinct 50%), each copy
    in a shuffled order."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    pool = np.array(sorted({ord(c) for d in docs for c in d if c.isprintable() and not c.isspace()}), dtype=np.uint32)
    out = list(docs)
    for _ in range(copies):
        order = list(range(len(docs)))
        rng.shuffle(order)
        for i in order:
            u = rng.random()
            if u < 0.10:
                out.append(_exact_variant(docs[i], rng))
                continue
            rate = 0.05 + 0.10 * rng.random() if u < 0.30 else 0.5
            codes = np.frombuffer(docs[i].encode("utf-32-le"), dtype=np.uint32).copy()
            hit = nrng.random(len(codes)) < rate
            codes[hit] = nrng.choice(pool, size=int(hit.sum()))
            out.append(codes.tobytes().decode("utf-32-le"))
    return out


def _chimed(name: str, sample: Path) -> list[str]:
    if name == "cpt":
        docs = [line.strip() for line in sample.joinpath("cpt.txt").read_text("utf-8").splitlines() if line.strip()]
        return _grow(docs, 5, seed=1)
    docs = []
    for line in sample.joinpath("sft.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            docs.append("\n".join(turn["value"] for turn in json.loads(line)["conversations"]))
    return _grow(docs, 2, seed=2)


def _templated(seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 5))) for _ in range(400)]
    docs = []
    for _ in range(2500):
        u = rng.random()
        if docs and u < 0.08:                                  # exact (normalising) copy of an earlier one
            docs.append(_exact_variant(rng.choice(docs), rng))
        elif docs and u < 0.20:                                # edited copy of an earlier one
            chars = list(rng.choice(docs))
            for _ in range(max(1, round(len(chars) * rng.uniform(0.03, 0.12)))):
                chars[rng.randrange(len(chars))] = chr(rng.randint(0x4E00, 0x9FA5))
            docs.append("".join(chars))
        elif u < 0.25:                                         # short (exact dedup only), often repeated
            docs.append(rng.choice(words[:40]) + rng.choice(["发热", "头痛", "咳嗽"]))
        else:
            fields = {k: rng.choice(words) for k in "abcdefghi"}
            docs.append(rng.choice(TEMPLATES).format(**fields))
    return docs


def workloads() -> dict[str, list[str]]:
    """name -> texts in stream order (cpt and sft only where the real sample is present)."""
    out = {"templated": _templated()}
    sample = shared_sample()
    if sample is not None:
        out["cpt"] = _chimed("cpt", sample)
        out["sft"] = _chimed("sft", sample)
    return out


def run(texts: list[str], config_name: str, **engine_kwargs) -> list[list]:
    """[index, keep, reason, dup_of, similarity] per text, as the engine at PYTHONPATH decides."""
    from qilin_lib.config import DedupConfig
    from qilin_lib.data.dedup import Deduplicator, dedup_stream

    dd = Deduplicator(DedupConfig(**CONFIGS[config_name]), **engine_kwargs)
    return [[d.index, d.keep, d.reason, d.dup_of, d.similarity] for d in dedup_stream(texts, deduplicator=dd)]


def texts_digest(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def write_reference(path: Path) -> None:
    ref = {}
    for name, texts in workloads().items():
        for config_name in CONFIGS:
            decisions = run(texts, config_name)
            ref[f"{name}/{config_name}"] = {"texts": texts_digest(texts), "n": len(texts),
                                            "removed": [d for d in decisions if not d[1]]}
            print(f"{name}/{config_name}: {len(texts)} texts, {len(ref[f'{name}/{config_name}']['removed'])} removed")
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(ref, fh, separators=(",", ":"))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--write":
        sys.exit(__doc__)
    write_reference(Path(sys.argv[2]))
