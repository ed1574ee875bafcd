"""Benchmark of qilin_lib.data.dedup on real medical text with planted exact and near copies.

    python benchmarks/bench_dedup.py [--mb 20] [--seed 0] [--quick] [--json PATH] [--loop-mb 2.5]

What it does, side by side in one run, on ONE core (thread variables set to 1 before numpy is imported,
and the process pinned to one CPU where the OS allows it):

1. Reads the real sample files under ../shared/data (env QILIN_SHARED_DATA overrides; read-only) into
   documents = natural units (a paragraph, a QA pair, an exam item, one field of one KG disease, a
   dialogue). If the folder is absent it says so and exits 0.
2. Deduplicates that base corpus with our defaults (timed: the "base pass" throughput, a corpus with
   next to no duplicates, so every document goes through MinHash). Pre-existing duplicates are removed
   here, so that precision below is measured only against duplicates we planted.
3. Plants copies of randomly chosen kept documents (of at least --plant-min-chars characters) at random
   later positions until the corpus reaches --mb MB: exact copies (whitespace, full-width and case
   variants that normalise equal) and near copies (5-15% of the characters edited: substitutions,
   insertions, deletions with random CJK characters; some originals get two copies). No text is
   fabricated besides these copies.
4. Deduplicates the planted corpus with our implementation (timed) and scores it: near-duplicate recall
   (a planted copy counts as found if removed as a duplicate of its original or of another copy of that
   original), precision (removed near-dup documents that are planted copies / all removed near-dup
   documents), exact-copy recall.
5. Runs the per-document datasketch loop most people write (MinHash(num_perm) updated shingle by
   shingle + MinHashLSH query/insert, with the same normalisation, exact hash and 5-gram verification),
   and the same loop with `update_batch`, on the first --loop-mb MB of the planted corpus (the whole
   corpus would take minutes), and ours on the same subset: speed ratios on identical input. Wall and
   CPU time are both reported (a shared machine inflates wall time); ours is timed --repeats times.
6. Peak traced memory (tracemalloc) of the streaming engine on the base corpus, on the same documents
   each doubled in length, and on the first half of the documents: memory follows documents, not text.

Throughput = UTF-8 bytes of input text per second of wall time. Writes nothing into the repository
(only --json PATH if given).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import ast  # noqa: E402
import csv  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from qilin_lib.config import DedupConfig  # noqa: E402
from qilin_lib.data.dedup import (Deduplicator, dedup_records, dedup_stream, exact_hash,  # noqa: E402
                                  normalize_batch, normalize_text, shingles)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


# ------------------------------------------------------------------------------------ real corpus
def _read(path: Path, encoding: str = "utf-8") -> str:
    return path.read_bytes().decode(encoding).lstrip("\ufeff")


def _json_or_lines(path: Path):
    text = _read(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _first(x):
    return x[0] if isinstance(x, list) and x else (x or "")


def _join(*parts) -> str:
    return "\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def load_documents(root: Path) -> list[tuple[str, str]]:
    """(source, text) documents from the real sample files; a missing file is skipped with a note."""
    docs: list[tuple[str, str]] = []

    def add(source: str, text: str) -> None:
        if text and text.strip():
            docs.append((source, text.strip()))

    def guarded(name, fn):
        try:
            fn()
        except FileNotFoundError as exc:
            print(f"  (skipped {name}: {exc})")

    def fever():  # textbook paragraphs, one per line
        for line in _read(root / "medicalgpt_medical/pretrain/fever.txt").splitlines():
            add("medicalgpt_fever", line)

    def medicalgpt_sft():
        for line in _read(root / "medicalgpt_medical/sft/medical_sft_1K_format.jsonl").splitlines():
            if line.strip():
                conv = json.loads(line)["conversations"]
                add("medicalgpt_sft", _join(*(m["value"] for m in conv)))

    def medicalgpt_reward():
        for rec in _json_or_lines(root / "medicalgpt_medical/reward/test.json"):
            add("medicalgpt_reward", _join(rec["question"], rec["response_chosen"]))

    def huatuo():
        for rec in _json_or_lines(root / "huatuo26m_test/huatuo26M_test_sample500.json"):
            add("huatuo26m", _join(_first(rec["instruction"]), _first(rec["output"])))

    def cmexam():
        with open(root / "cmexam/val_from_xlsx.csv", encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                add("cmexam_val", _join(row["Question"], row["Options"].replace("\\n", "\n"),
                                        row.get("Explanation") or ""))

    def xywy():  # every long text field of every disease is one document
        data = json.loads(_read(root / "medical_kg_xywy/medical_0.json"))
        for rec in data.values():
            name = rec.get("gaishu_info", {}).get("name", "") if isinstance(rec.get("gaishu_info"), dict) else ""
            fields = [rec.get("gaishu_info", {}).get("desc") if isinstance(rec.get("gaishu_info"), dict) else None,
                      rec.get("cause_info"), rec.get("prevent_info"), rec.get("nursing_info")]
            sym = rec.get("symptom_data")
            if isinstance(sym, str):
                try:
                    sym = ast.literal_eval(sym)
                except (ValueError, SyntaxError):
                    fields.append(sym)
                    sym = None
            if isinstance(sym, dict):
                fields.append("\n".join(s for s in sym.get("symptom_detail", []) if isinstance(s, str)))
            food = rec.get("food_info")
            if isinstance(food, dict):
                fields.append(_join(food.get("good_diet_text"), food.get("avoid_diet_text")))
            for f in fields:
                if isinstance(f, str) and f.strip():
                    add("xywy_kg", f"{name}\n{f}" if name else f)

    def llama_kg():
        for rec in _json_or_lines(root / "huatuo_llama_kg_instruct/llama_data.json"):
            add("huatuo_llama_kg", _join(rec.get("instruction"), rec.get("input"), rec.get("output")))

    def cmtmedqa():
        for rec in _json_or_lines(root / "cmtmedqa_test/CMtMedQA_test_sample300.json"):
            turns = [t for pair in rec.get("history") or [] for t in pair]
            turns += [rec.get("instruction") or rec.get("instruct"), rec.get("output")]
            add("cmtmedqa", _join(*turns))

    def toyhom():
        with open(root / "toyhom_dialogue/内科_sample3000.csv", encoding="gbk", newline="") as fh:
            for row in csv.DictReader(fh):
                add("toyhom", _join(row["title"], row["ask"], row["answer"]))

    def cmedqa2():  # the constant instruction is a prompt, not content
        for rec in _json_or_lines(root / "cmedqa2_test/test_sample500.json"):
            add("cmedqa2", _join(rec.get("input"), rec.get("output")))

    def pubmedqa():
        for rec in _json_or_lines(root / "pubmedqa/pqal_trainval.json").values():
            add("pubmedqa", _join(rec["QUESTION"], " ".join(rec["CONTEXTS"]), rec.get("LONG_ANSWER")))

    def exams():
        for rec in _json_or_lines(root / "cnmleqa/CNMLEQA-3k_sample300.json"):
            add("cnmleqa", _join(rec["question"], *(f"{k[-1].upper()} {rec[k]}" for k in
                                                     ("opa", "opb", "opc", "opd", "ope") if rec.get(k))))
        for rec in _json_or_lines(root / "medqa_mainland_test/test_sample300.json"):
            add("medqa_mainland", _join(rec.get("input"), rec.get("output")))
        for rec in _json_or_lines(root / "cmexam/test_sample300.json"):
            add("cmexam_test", _join(rec.get("input"), rec.get("output")))

    def cmexam_rag():
        for line in _read(root / "medicalgpt_medical/rag/medical_corpus.txt").splitlines():
            if line.strip():
                rec = json.loads(line)
                add("medicalgpt_rag", _join(rec.get("问"), rec.get("答")))

    def qasystem():
        with open(root / "qasystem_medicalkg_partial/medical_data.csv", encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                for col in ("疾病描述", "病因", "预防措施"):
                    add("qasystem_kg", row.get(col) or "")

    for name, fn in [("fever", fever), ("medicalgpt_sft", medicalgpt_sft), ("reward", medicalgpt_reward),
                     ("huatuo", huatuo), ("cmexam", cmexam), ("xywy", xywy), ("llama_kg", llama_kg),
                     ("cmtmedqa", cmtmedqa), ("toyhom", toyhom), ("cmedqa2", cmedqa2),
                     ("pubmedqa", pubmedqa), ("exams", exams), ("rag", cmexam_rag),
                     ("qasystem", qasystem)]:
        guarded(name, fn)
    return docs


# ---------------------------------------------------------------------------------------- planting
def _cjk(rng: np.random.Generator, n: int) -> list[str]:
    return [chr(c) for c in rng.integers(0x4E00, 0x9FA6, size=n)]


def near_copy(text: str, rng: np.random.Generator, lo: float = 0.05, hi: float = 0.15) -> tuple[str, float]:
    """Edit a fraction in [lo, hi] of the characters: substitutions, insertions, deletions (random CJK)."""
    rate = float(rng.uniform(lo, hi))
    chars = list(text)
    n_edits = max(1, int(round(rate * len(chars))))
    ops = rng.integers(0, 3, size=n_edits)
    fresh = _cjk(rng, n_edits)
    for op, ch in zip(ops, fresh):
        p = int(rng.integers(0, len(chars)))
        if op == 0:
            chars[p] = ch
        elif op == 1:
            chars.insert(p, ch)
        elif len(chars) > 1:
            del chars[p]
    return "".join(chars), rate


_FW_PUNCT = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}


def exact_variant(text: str, rng: np.random.Generator) -> str:
    """A copy that differs only in ways the normalisation folds: whitespace, full-width forms, case."""
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return text
    if kind == 1:   # whitespace: spaces around, newlines doubled, a tab
        return "  " + text.replace("\n", " \n\n ").replace(" ", "\u3000 ", 1) + "\t"
    if kind == 2:   # full-width ASCII letters/digits and full-width punctuation
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and c not in ",:;?!()" else
                       _FW_PUNCT.get(c, c) for c in text)
    return text.swapcase()


@dataclasses.dataclass
class Planted:
    texts: list[str]
    sources: list[str]
    root: np.ndarray           # index (in `texts`) of the original of each document's family (self if none)
    kind: np.ndarray           # 0 base document, 1 exact copy, 2 near copy
    rate: np.ndarray           # edit rate of near copies
    length: np.ndarray         # characters of the original the copy was made from


def plant(base: list[tuple[str, str]], target_bytes: int, rng: np.random.Generator, min_chars: int,
          exact_share: float = 0.25, second_copy: float = 0.2, min_fraction: float = 0.1) -> Planted:
    n = len(base)
    base_bytes = sum(len(t.encode()) for _, t in base)
    eligible = np.array([i for i, (_, t) in enumerate(base) if len(normalize_text(t)) >= min_chars])
    order = rng.permutation(eligible)
    copies: list[tuple[float, int, int, str, float]] = []   # (position key, original, kind, text, rate)
    total, j = base_bytes, 0
    while (total < target_bytes or j < min_fraction * len(eligible)) and j < len(order):
        orig = int(order[j])
        j += 1
        src_text = base[orig][1]
        for c in range(2 if rng.random() < second_copy else 1):
            if rng.random() < exact_share:
                text, kind, rate = exact_variant(src_text, rng), 1, 0.0
            else:
                (text, rate), kind = near_copy(src_text, rng), 2
            pos = orig + rng.uniform(0.001, n - orig)          # strictly after the original
            copies.append((pos, orig, kind, text, rate))
            total += len(text.encode())
    items = [(float(i), i, 0, t, 0.0) for i, (_, t) in enumerate(base)] + copies
    items.sort(key=lambda x: x[0])
    new_index = {}
    for k, it in enumerate(items):
        if it[2] == 0:
            new_index[it[1]] = k
    texts = [it[3] for it in items]
    sources = [base[it[1]][0] for it in items]
    root = np.array([new_index[it[1]] for it in items])
    kind = np.array([it[2] for it in items])
    rate = np.array([it[4] for it in items])
    length = np.array([len(base[it[1]][1]) for it in items])
    return Planted(texts, sources, root, kind, rate, length)


def score(p: Planted, decisions) -> dict:
    removed = np.array([not d.keep for d in decisions])
    reason = np.array([d.reason for d in decisions])
    dup_of = np.array([d.dup_of if d.dup_of is not None else -1 for d in decisions])
    family_ok = removed & (dup_of >= 0) & (p.root[np.maximum(dup_of, 0)] == p.root)
    near, exact = p.kind == 2, p.kind == 1
    near_removed = removed & (reason == "near")
    res = {
        "planted_near": int(near.sum()), "planted_exact": int(exact.sum()),
        "near_recall": float(family_ok[near].mean()) if near.any() else float("nan"),
        "near_removed_any_reason": float(removed[near].mean()) if near.any() else float("nan"),
        "exact_recall": float((family_ok & (reason == "exact"))[exact].mean()) if exact.any() else float("nan"),
        "near_removed_total": int(near_removed.sum()),
        "near_removed_planted": int((near_removed & (p.kind > 0)).sum()),
        "precision": float((near_removed & (p.kind > 0)).sum() / max(1, near_removed.sum())),
        "pair_precision": float((near_removed & family_ok).sum() / max(1, near_removed.sum())),
        "base_removed": int((removed & (p.kind == 0)).sum()),
    }
    # recall by edit rate and by original length
    for lo, hi in ((0.05, 0.075), (0.075, 0.10), (0.10, 0.125), (0.125, 0.15)):
        m = near & (p.rate >= lo) & (p.rate < hi if hi < 0.15 else p.rate <= hi)
        res[f"recall_rate_{lo:.3f}-{hi:.3f}"] = float(family_ok[m].mean()) if m.any() else None
    for lo, hi in ((0, 100), (100, 300), (300, 1000), (1000, 10**9)):
        m = near & (p.length >= lo) & (p.length < hi)
        res[f"recall_len_{lo}-{hi if hi < 10**9 else 'inf'}"] = (float(family_ok[m].mean()) if m.any() else None,
                                                                  int(m.sum()))
    return res


def edit_similarity(a: str, b: str) -> float:
    """Lee et al.'s EditSim = 1 - Levenshtein(a, b) / max(len): characters, numpy DP one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    if not a:
        return 1.0
    bb = np.frombuffer(b.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    ar = np.arange(len(bb) + 1)
    prev = ar.copy()
    tmp = np.empty_like(prev)
    for i, ch in enumerate(np.frombuffer(a.encode("utf-32-le", "surrogatepass"), dtype=np.uint32), 1):
        tmp[0] = i
        np.minimum(prev[1:] + 1, prev[:-1] + (bb != ch), out=tmp[1:])
        prev = np.minimum.accumulate(tmp - ar) + ar
    return 1.0 - float(prev[-1]) / len(a)


def audit_removals(texts: list[str], decisions, rng: np.random.Generator, n: int = 200,
                   max_chars: int = 3000) -> dict:
    """EditSim of a sample of near-duplicate removals with the document each was matched to."""
    near = [d for d in decisions if d.reason == "near"]
    if not near:
        return {"n": 0}
    pick = rng.choice(len(near), size=min(n, len(near)), replace=False)
    sims = np.array([edit_similarity(normalize_text(texts[near[k].index])[:max_chars],
                                     normalize_text(texts[near[k].dup_of])[:max_chars]) for k in pick])
    return {"n": len(sims), "removed": len(near), "frac_ge_0.8": float((sims >= 0.8).mean()),
            "frac_ge_0.7": float((sims >= 0.7).mean()), "median": float(np.median(sims))}


# ------------------------------------------------------------------------------------- the loop
def datasketch_loop(texts: list[str], cfg: DedupConfig, batch_update: bool = False
                    ) -> list[tuple[bool, str, int | None]]:
    """The per-document loop most people write: MinHash(num_perm) updated shingle by shingle (or with
    `update_batch`), MinHashLSH query then insert, the same normalisation and exact hash as ours, and
    candidates verified on the 5-gram Jaccard estimate only (no order / character tests)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=cfg.lsh_threshold, num_perm=cfg.num_perm)
    stored: dict[int, MinHash] = {}
    seen: dict[bytes, int] = {}
    out = []
    for i, text in enumerate(texts):
        norm = normalize_text(text)
        key = exact_hash(norm)
        if key in seen:
            out.append((False, "exact", seen[key]))
            continue
        seen[key] = i
        if len(norm) < max(cfg.min_chars, cfg.ngram):
            out.append((True, "kept", None))
            continue
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        if batch_update:
            m.update_batch([sh.encode("utf8") for sh in shingles(norm, cfg.ngram)])
        else:
            for sh in shingles(norm, cfg.ngram):
                m.update(sh.encode("utf8"))
        best, dup = -1.0, None
        for cand in lsh.query(m):
            sim = m.jaccard(stored[cand])
            if sim >= cfg.verify_threshold and sim > best:
                best, dup = sim, cand
        if dup is None:
            lsh.insert(i, m)
            stored[i] = m
            out.append((True, "kept", None))
        else:
            out.append((False, "near", dup))
    return out


# ---------------------------------------------------------------------------------------- memory
def traced_peak(texts_factory, cfg: DedupConfig) -> dict:
    """Peak traced bytes (tracemalloc) of dedup_stream over a generator, and its persistent state."""
    gc.collect()
    tracemalloc.start()
    dd = Deduplicator(cfg)
    n = kept = 0
    for d in dedup_stream(texts_factory(), deduplicator=dd):
        n += 1
        kept += d.keep
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak": peak, "state": dd.nbytes, "docs": n, "kept": kept}


def maxrss_mb() -> float:
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except ImportError:  # pragma: no cover
        return float("nan")


def timed(fn, repeats: int = 1) -> tuple[list[float], list[float], object]:
    """(wall seconds, CPU seconds, last result) of `repeats` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls, cpus, out


# ------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=20.0, help="target corpus size with planted copies (MB)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="a fifth of the documents, 4 MB, a 0.6 MB loop subset, one timing run, no memory runs")
    ap.add_argument("--loop-mb", type=float, default=2.5, help="MB of the corpus the datasketch loops time")
    ap.add_argument("--repeats", type=int, default=3, help="timing runs of ours (best and median reported)")
    ap.add_argument("--plant-min-chars", type=int, default=50,
                    help="originals of planted copies have at least this many characters")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--data", type=Path, default=None,
                    help="data folder (default: env QILIN_SHARED_DATA or ../shared/data)")
    args = ap.parse_args(argv)

    pinned = "not pinned"
    if hasattr(os, "sched_setaffinity"):
        try:
            cpu = min(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpu})
            pinned = f"pinned to CPU {cpu}"
        except OSError:
            pass
    root = args.data or Path(os.environ.get("QILIN_SHARED_DATA") or DEFAULT_DATA)
    if not root.is_dir():
        print(f"bench_dedup: real data folder {root} not found (set QILIN_SHARED_DATA); nothing to do.")
        return 0
    cfg = DedupConfig()
    rng = np.random.default_rng(args.seed)
    MB = 1e6
    if args.quick:
        args.mb, args.loop_mb, args.repeats = min(args.mb, 4.0), min(args.loop_mb, 0.6), 1

    load = f"; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs" if hasattr(os, "getloadavg") else ""
    print(f"bench_dedup: data {root}; one core ({pinned}; thread pools 1); numpy {np.__version__}{load}")
    print(f"config: {dataclasses.asdict(cfg)}")
    docs = load_documents(root)
    if args.quick:   # a uniform sample of the documents, in order
        keep = np.sort(rng.choice(len(docs), size=len(docs) // 5, replace=False))
        docs = [docs[i] for i in keep]
    real_texts = [t for _, t in docs]
    real_bytes = sum(len(t.encode()) for t in real_texts)
    print(f"real documents: {len(docs)} ({real_bytes / MB:.2f} MB UTF-8, "
          f"{sum(map(len, real_texts)) / MB:.2f} M characters)")
    w, _, _ = timed(lambda: normalize_batch(["warm-up"]))
    print(f"one-time build of the normalisation tables: {w[0]:.2f} s (excluded from the timings)")

    # 1. base pass (also removes pre-existing duplicates)
    recs = [{"text": t, "source": s} for s, t in docs]
    bw, bc, (base_kept, base_report) = timed(lambda: dedup_records(recs, config=cfg, progress=False))
    base_mbs = real_bytes / MB / bw[0]
    print(f"\nbase pass (dedup_records on the real documents): {bw[0]:.2f} s wall, {bc[0]:.2f} s CPU = "
          f"{base_mbs:.2f} MB/s wall, {real_bytes / MB / bc[0]:.2f} MB/s CPU; removed "
          f"{base_report.exact_removed} exact + {base_report.near_removed} near pre-existing duplicates "
          f"(bands {base_report.bands} x rows {base_report.rows})")
    print(f"  {'source':<20}{'total':>8}{'exact':>8}{'near':>8}{'kept':>8}")
    for name, sc in sorted(base_report.per_source.items()):
        print(f"  {name:<20}{sc.total:>8}{sc.exact_removed:>8}{sc.near_removed:>8}{sc.kept:>8}")
    base = [(r["source"], r["text"]) for r in base_kept]
    base_dec = list(dedup_stream(real_texts, cfg))
    audit = audit_removals(real_texts, base_dec, np.random.default_rng(args.seed + 1),
                           n=60 if args.quick else 200)
    if audit["n"]:
        print(f"  audit of {audit['n']} of these {audit['removed']} near removals against Lee et al.'s "
              f"criterion: EditSim >= 0.8 for {audit['frac_ge_0.8']:.2f}, >= 0.7 for {audit['frac_ge_0.7']:.2f}, "
              f"median {audit['median']:.2f} (the rest: shared templates, reordered or merged content)")

    # 2. plant
    planted = plant(base, int(args.mb * MB), rng, args.plant_min_chars)
    texts = planted.texts
    sizes = np.array([len(t.encode()) for t in texts])
    corpus_bytes = int(sizes.sum())
    base_mb = sum(len(t.encode()) for _, t in base) / MB
    print(f"\nplanted corpus: {len(texts)} documents, {corpus_bytes / MB:.2f} MB = {base_mb:.2f} MB real "
          f"deduplicated text + {(planted.kind == 1).sum()} exact and {(planted.kind == 2).sum()} near copies "
          f"of {len(set(planted.root[planted.kind > 0].tolist()))} originals with >= {args.plant_min_chars} "
          f"chars (no other text added)")

    # 3. ours on the planted corpus
    ow, oc, decisions = timed(lambda: list(dedup_stream(texts, cfg)), args.repeats)
    res = score(planted, decisions)
    ours_best, ours_med = corpus_bytes / MB / min(ow), corpus_bytes / MB / float(np.median(ow))
    ours_cpu = corpus_bytes / MB / min(oc)

    # 4. the loops and ours on the same subset
    n_sub = int(np.searchsorted(np.cumsum(sizes), args.loop_mb * MB)) + 1
    sub = texts[:n_sub]
    sub_bytes = int(sizes[:n_sub].sum())
    lw, lc, loop_out = timed(lambda: datasketch_loop(sub, cfg))
    uw, uc, upd_out = timed(lambda: datasketch_loop(sub, cfg, batch_update=True))
    sw, sc_, sub_dec = timed(lambda: list(dedup_stream(sub, cfg)), args.repeats)
    loop_mbs, upd_mbs, sub_mbs = sub_bytes / MB / lw[0], sub_bytes / MB / uw[0], sub_bytes / MB / min(sw)
    loop_cpu, upd_cpu, sub_cpu = sub_bytes / MB / lc[0], sub_bytes / MB / uc[0], sub_bytes / MB / min(sc_)
    sub_planted = Planted(sub, planted.sources[:n_sub], planted.root[:n_sub], planted.kind[:n_sub],
                          planted.rate[:n_sub], planted.length[:n_sub])
    from types import SimpleNamespace as NS
    loop_res = score(sub_planted, [NS(keep=k, reason=r, dup_of=d) for k, r, d in loop_out])
    sub_res = score(sub_planted, sub_dec)

    # 5. memory
    mem = {}
    if not args.quick:
        base_texts = [t for _, t in base]
        mem["base"] = traced_peak(lambda: iter(base_texts), cfg)
        mem["doubled_length"] = traced_peak(lambda: (t + "\n" + t for t in base_texts), cfg)
        mem["half_documents"] = traced_peak(lambda: iter(base_texts[: len(base_texts) // 2]), cfg)
        mem["base_mb"] = base_mb

    # ---- report
    print(f"\n{'':<36}{'ours (numpy)':>14}{'loop update()':>15}{'loop update_batch()':>21}")
    print(f"{'same subset (MB)':<36}{sub_bytes / MB:>14.2f}{sub_bytes / MB:>15.2f}{sub_bytes / MB:>21.2f}")
    print(f"{'wall s':<36}{min(sw):>14.2f}{lw[0]:>15.2f}{uw[0]:>21.2f}")
    print(f"{'throughput MB/s (wall)':<36}{sub_mbs:>14.2f}{loop_mbs:>15.2f}{upd_mbs:>21.2f}")
    print(f"{'throughput MB/s (CPU time)':<36}{sub_cpu:>14.2f}{loop_cpu:>15.2f}{upd_cpu:>21.2f}")
    print(f"{'near recall on the subset':<36}{sub_res['near_recall']:>14.3f}{loop_res['near_recall']:>15.3f}")
    print(f"{'precision on the subset':<36}{sub_res['precision']:>14.3f}{loop_res['precision']:>15.3f}")
    same = "the same" if [o[0] for o in loop_out] == [o[0] for o in upd_out] else "different"
    print(f"(the loops verify candidates on the 5-gram Jaccard estimate only, without our order and character "
          f"tests; the two loops make {same} keep/drop decisions)")
    print()
    print(f"throughput ours: {ours_best:.2f} MB/s (best of {len(ow)} runs; median {ours_med:.2f}; CPU time "
          f"{ours_cpu:.2f}) on the full planted corpus of {corpus_bytes / MB:.2f} MB; base pass {base_mbs:.2f} "
          f"MB/s (one cold run); target >= 5 MB/s: {'OK' if ours_best >= 5 else 'MISSED'}")
    print(f"ratio vs the datasketch update() loop on the same {sub_bytes / MB:.2f} MB subset (the first "
          f"{n_sub} documents; the whole corpus would take it ~{corpus_bytes / MB / loop_mbs / 60:.1f} min): "
          f"{sub_mbs / loop_mbs:.1f}x wall, {sub_cpu / loop_cpu:.1f}x CPU; target >= 10x: "
          f"{'OK' if min(sub_mbs / loop_mbs, sub_cpu / loop_cpu) >= 10 else 'MISSED'}; "
          f"vs update_batch(): {sub_mbs / upd_mbs:.1f}x wall")
    print(f"near-dup recall: {res['near_recall']:.4f} ({res['planted_near']} planted near copies, 5-15% of "
          f"characters edited; removed for any reason {res['near_removed_any_reason']:.4f}); target >= 0.95: "
          f"{'OK' if res['near_recall'] >= 0.95 else 'MISSED'}")
    print(f"near-dup precision: {res['precision']:.4f} ({res['near_removed_planted']} of "
          f"{res['near_removed_total']} near-removed documents are planted copies; removed as a duplicate "
          f"of their own family: {res['pair_precision']:.4f}); target >= 0.98: "
          f"{'OK' if res['precision'] >= 0.98 else 'MISSED'}")
    print(f"exact-dup recall: {res['exact_recall']:.4f} ({res['planted_exact']} planted exact copies: identical, "
          f"whitespace, full-width and case variants)")
    print("near recall by edit rate: " + ", ".join(f"{k[12:]}: {v:.3f}" for k, v in res.items()
                                                     if k.startswith("recall_rate") and v is not None))
    print("near recall by original length (chars): " + ", ".join(
        f"{k[11:]} {v[0]:.3f} (n={v[1]})" for k, v in res.items() if k.startswith("recall_len") and v[0] is not None))
    if mem:
        b, d, h = mem["base"], mem["doubled_length"], mem["half_documents"]
        print(f"peak traced memory (tracemalloc; dedup_stream over a generator): {b['peak'] / MB:.1f} MB on the "
              f"{b['docs']} base documents ({base_mb:.1f} MB of text); {d['peak'] / MB:.1f} MB on the same documents "
              f"each doubled in length (x{d['peak'] / b['peak']:.2f}); {h['peak'] / MB:.1f} MB on the first half of "
              f"the documents. Persistent state: {b['state'] / MB:.1f} MB ({b['state'] / max(b['kept'], 1):.0f} B "
              f"per kept document), doubled {d['state'] / MB:.1f} MB, half {h['state'] / MB:.1f} MB: memory follows "
              f"documents, not text")
    print(f"process max RSS: {maxrss_mb():.0f} MB")
    print(f"corpus: {corpus_bytes / MB:.2f} MB planted ({real_bytes / MB:.2f} MB of real text read, "
          f"{base_mb:.2f} MB after deduplication)")

    if args.json:
        out = {"config": dataclasses.asdict(cfg), "real_mb": real_bytes / MB, "corpus_mb": corpus_bytes / MB,
               "ours_mb_s_best": ours_best, "ours_mb_s_median": ours_med, "ours_mb_s_cpu": ours_cpu,
               "base_pass_mb_s": base_mbs, "loop_subset_mb": sub_bytes / MB, "loop_mb_s": loop_mbs,
               "loop_update_batch_mb_s": upd_mbs, "ours_subset_mb_s": sub_mbs,
               "ratio_subset_wall": sub_mbs / loop_mbs, "ratio_subset_cpu": sub_cpu / loop_cpu,
               "scores": res, "subset_scores_ours": sub_res, "subset_scores_loop": loop_res, "memory": mem,
               "base_report": base_report.as_dict(), "base_audit": audit, "seed": args.seed,
               "quick": args.quick}
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
