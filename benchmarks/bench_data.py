"""Memory and throughput of the data stage on ChiMed-layout corpora: streaming (qilin_lib.data.stage) vs the
list-based stage it replaced, side by side in one run.

    python benchmarks/bench_data.py [--sizes 0.25 0.5 1 2] [--seed 0] [--workdir DIR] [--keep] [--json PATH]

For every size (GB of text in total, default 0.25, 0.5, 1, 2):

1. Builds the three files of the released ChiMed layout (see ../shared/data/chimed_format/SOURCE.md) in a
   temporary directory, in the release's proportions (cpt.txt 4.85 GB : sft.jsonl 8.35 GB : dpo.json
   18.6 MB, dpo.json at least its sample): `cpt.txt` one document per line, `sft.jsonl`
   `{"conversations": [{"from": "input", ...}, {"from": "output", ...}]}`, `dpo.json` JSON lines
   `{"question", "response_chosen", "response_rejected"}`. They are grown from the real sample in
   ../shared/data/chimed_format (env QILIN_SHARED_DATA overrides; if it is absent the script says so and
   exits 0): the sample first, then copy after copy of it, each document of a copy being an exact copy
   (10%), a near copy with 5-15% of its characters substituted (20%), or a distinct document with half its
   characters substituted (70%); substitutes are drawn from the sample's own characters. Deduplication
   therefore removes exact and near copies and keeps a growing number of documents.
2. Writes a profile (the `paper` profile with data.sources pointing at these files, no benchmarks) and runs
   the data stage on it twice, each in its own process pinned to one CPU (thread variables set to 1), so
   that peak RSS and time are those of one path on one core:
   - new: `run_data_stage` (records stream from the readers through dedup into Arrow on disk);
   - old: the list-based stage as it was before streaming (`old_data_stage` below, built from the
     library's loaders, router, `dedup_records` and `Dataset.from_list`): every source loaded into a list,
     routed into per-corpus lists, deduplicated into lists, saved with `Dataset.from_list`;
   - dedup: the sources read, routed and deduplicated as the new stage does, nothing kept or written
     (`dedup_only`): the floor that the dedup engine sets for memory and time.
3. Prints per size and path: MB of text (file bytes, 10^6), records read, records kept / removed by dedup,
   seconds of the stage (imports excluded), MB/s, peak RSS (VmHWM, MiB), its growth over the RSS after
   imports, growth / text (both MiB), and the dedup index (the largest corpus's, MiB); then the new/old
   ratios, and how much the new stage's RSS growth exceeds that of dedup alone. Targets (issue 12): peak
   RSS grows with the dedup index only (well under 1 GB per GB of text); at least 5 MB/s per core end to
   end.

Exits non-zero if the two paths build different corpora (their content_hash differ). Writes nothing into
the repository (only --json PATH if given); the temporary directory is removed unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RELEASE_BYTES = {"cpt": 4.85e9, "sft": 8.35e9, "dpo": 18.6e6}  # williamliu/ChiMed
FILES = {"cpt": "cpt.txt", "sft": "sft.jsonl", "dpo": "dpo.json"}
# per document of a copy: (share, low and high substitution rate)
VARIANTS = ((0.10, 0.0, 0.0), (0.20, 0.05, 0.15), (0.70, 0.5, 0.5))
SINGLE_THREAD = {var: "1" for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                      "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS")}


def sample_dir() -> Path | None:
    env = os.environ.get("QILIN_SHARED_DATA")
    path = (Path(env) if env else REPO.parent / "shared" / "data") / "chimed_format"
    return path if path.is_dir() else None


# ------------------------------------------------------------------------------------ the corpora
def _sample_documents(sample: Path) -> dict[str, list[list[str]]]:
    """Each sample document as the list of its text fields (cpt: the line; sft: the turns; dpo: the
    question and both responses), and the JSON keys around them rebuilt by `_render`."""
    cpt = [[line.strip()] for line in sample.joinpath("cpt.txt").read_text("utf-8").splitlines() if line.strip()]
    sft, dpo = [], []
    for line in sample.joinpath("sft.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            sft.append([turn["from"] + "\0" + turn["value"] for turn in json.loads(line)["conversations"]])
    for line in sample.joinpath("dpo.json").read_text("utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            dpo.append([obj["question"], obj["response_chosen"], obj["response_rejected"]])
    return {"cpt": cpt, "sft": sft, "dpo": dpo}


def _render(corpus: str, fields: list[str]) -> str:
    if corpus == "cpt":
        return fields[0]
    if corpus == "sft":
        turns = [dict(zip(("from", "value"), field.split("\0", 1))) for field in fields]
        return json.dumps({"conversations": turns}, ensure_ascii=False)
    return json.dumps(dict(zip(("question", "response_chosen", "response_rejected"), fields)), ensure_ascii=False)


def _perturbed_copy(docs: list[list[str]], rng, pool, keep_prefix: bool) -> list[list[str]]:
    """One copy of the documents, each exact, near or distinct (VARIANTS), substituted in one numpy pass.
    sft turns keep their speaker (`from`, before the NUL) when `keep_prefix`."""
    import numpy as np

    shares = [share for share, _, _ in VARIANTS]
    kind = rng.choice(len(VARIANTS), size=len(docs), p=shares)
    lows = np.array([low for _, low, _ in VARIANTS])[kind]
    highs = np.array([high for _, _, high in VARIANTS])[kind]
    rates = lows + (highs - lows) * rng.random(len(docs))
    fields = [field for doc in docs for field in doc]
    field_rates = np.repeat(rates, [len(doc) for doc in docs])
    text = "\x01".join(fields)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).copy()
    lengths = np.array([len(f) for f in fields]) + 1
    char_rates = np.repeat(field_rates, lengths)[: codes.size]
    hit = (rng.random(codes.size) < char_rates) & (codes > 1)  # separators stay
    if keep_prefix:  # the speaker name before each turn's NUL stays as it is
        hit &= np.maximum.accumulate(np.where(codes == 0, np.arange(codes.size), -1)) > np.maximum.accumulate(
            np.where(codes == 1, np.arange(codes.size), -1))
    codes[hit] = rng.choice(pool, size=int(hit.sum()))
    out = codes.tobytes().decode("utf-32-le").split("\x01")
    it = iter(out)
    return [[next(it) for _ in doc] for doc in docs]


def build_corpora(sample: Path, total_gb: float, out: Path, seed: int) -> dict:
    """cpt.txt / sft.jsonl / dpo.json under `out` with `total_gb` GB of text in the release's proportions."""
    import numpy as np

    rng = np.random.default_rng(seed)
    docs = _sample_documents(sample)
    text = "".join(field for corpus in docs.values() for doc in corpus for field in doc)
    pool = np.array([c for c in np.unique(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)).tolist()
                     if chr(c).isprintable() and not chr(c).isspace()], dtype=np.uint32)  # no line breaks
    total = sum(RELEASE_BYTES.values())
    written = {}
    for corpus, name in FILES.items():
        target = max(total_gb * 1e9 * RELEASE_BYTES[corpus] / total, sample.joinpath(name).stat().st_size)
        size, first = 0, True
        with open(out / name, "w", encoding="utf-8") as fh:
            while size < target:
                batch = docs[corpus] if first else _perturbed_copy(docs[corpus], rng, pool, corpus == "sft")
                first = False
                for doc in batch:
                    line = _render(corpus, doc) + "\n"
                    fh.write(line)
                    size += len(line.encode("utf-8"))
                    if size >= target:
                        break
        written[corpus] = size
    return written


def write_profile(data_dir: Path, path: Path) -> Path:
    """The paper profile reading the three files (no benchmarks: the data stage does not read them)."""
    import yaml

    from qilin_lib.config import load_config  # noqa: F401  (validates below)

    raw = yaml.safe_load((REPO / "qilin_lib" / "profiles" / "paper.yaml").read_text("utf-8"))
    raw["name"] = "bench_data"
    raw["data"]["benchmarks"] = {}
    raw["data"]["sources"] = [
        {"name": f"chimed_{corpus}", "loader": loader, "path": str(data_dir / FILES[corpus]), "stage": corpus}
        for corpus, loader in (("cpt", "chimed_cpt_txt"), ("sft", "chimed_sft_jsonl"), ("dpo", "chimed_dpo_json"))]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_config(str(path))
    return path


# ------------------------------------------------------------------------------ the old stage
def old_data_stage(cfg) -> dict:
    """The data stage before streaming (qilin_lib/data/stage.py up to commit 5242f0e), on the `sources`
    path: every source loaded into a list (`load_source`), routed into per-corpus lists, each corpus
    deduplicated into a list (`dedup_records`) and saved with `Dataset.from_list(rows).save_to_disk`, in
    the same artifact directory (`art.writing`) with the same statistics."""
    import dataclasses

    from datasets import Dataset

    from qilin_lib.cache import hash_obj
    from qilin_lib.data import chimed
    from qilin_lib.data.dedup import dedup_records
    from qilin_lib.data.io import resolve_path
    from qilin_lib.data.sources import LOADER_KINDS, load_source
    from qilin_lib.data.stage import STATS_FILE, CorpusCounts, check_skips, data_artifact

    routed: dict[str, list] = {"cpt": [], "sft": [], "dpo": []}
    evals, load_stats = {}, []
    for spec in cfg.data.sources:
        kind = LOADER_KINDS[spec["loader"]]
        recs = load_source(spec["loader"], resolve_path(spec["path"]), errors=cfg.data.errors,
                           max_records=cfg.data.max_records_per_source, **spec.get("options", {}))
        for rec in recs:
            rec["source"] = spec["name"]
        stats = recs.stats.as_dict() | {"source": spec["name"], "path": str(spec["path"])}
        check_skips(stats, cfg.data.max_skip_fraction)
        load_stats.append(stats)
        if spec.get("stage") == "eval" or kind == "pubmedqa":
            evals[spec["name"]] = list(recs)
            continue
        for corpus, out in chimed.route(recs, kind, spec).items():
            routed[corpus] += out

    def save(recs, path):
        columns = sorted({key for rec in recs for key in rec})
        rows = [{key: rec.get(key) for key in columns} for rec in recs]
        Dataset.from_list(rows).save_to_disk(str(path)) if rows else path.mkdir(parents=True)

    art = data_artifact(cfg)
    with art.writing() as out:
        corpora, dedup = {}, {}
        for corpus in chimed.CORPORA:
            dedup_cfg = dataclasses.replace(cfg.data.dedup, near=False) if corpus == "dpo" else cfg.data.dedup
            kept, report = dedup_records(routed.get(corpus, []), text_key=lambda r, c=corpus: chimed.dedup_text(r, c),
                                         config=dedup_cfg, progress=False)
            dedup[corpus] = report.as_dict()
            corpora[corpus] = kept
            save(kept, out / f"chimed_{corpus}")
        for name, recs in evals.items():
            save(recs, out / "eval" / name)
        counts = {}
        for corpus, recs in corpora.items():
            counts[corpus] = CorpusCounts(corpus)
            for rec in recs:
                counts[corpus].add(rec)
        stats = {"corpora": {c: n.as_dict() for c, n in counts.items()},
                 "eval_sets": {name: len(recs) for name, recs in evals.items()}, "dedup": dedup,
                 "content_hash": hash_obj({c: [hash_obj(r) for r in recs] for c, recs in corpora.items()}),
                 "profile": cfg.name, "generator": cfg.data.generator, "sources": load_stats}
        (out / STATS_FILE).write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")
    return stats | {"artifact": {"output_hash": art.manifest["output_hash"]}}


def dedup_only(cfg) -> dict:
    """Every corpus read, routed and deduplicated as the streaming stage does it, the kept records dropped."""
    import dataclasses

    from qilin_lib.data import chimed
    from qilin_lib.data.dedup import DedupReport, iter_dedup_records
    from qilin_lib.data.sources import LOADER_KINDS, open_source

    def records(corpus):
        for spec in cfg.data.sources:
            kind = LOADER_KINDS[spec["loader"]]
            if corpus in chimed.route_targets(kind, spec):
                for rec in open_source(spec["loader"], spec["path"], errors=cfg.data.errors,
                                       max_records=cfg.data.max_records_per_source):
                    rec["source"] = spec["name"]
                    yield chimed.convert(rec, kind, corpus, spec)

    dedup = {}
    for corpus in chimed.CORPORA:
        config = dataclasses.replace(cfg.data.dedup, near=False) if corpus == "dpo" else cfg.data.dedup
        report = DedupReport()
        for _ in iter_dedup_records(records(corpus), text_key=lambda r, c=corpus: chimed.dedup_text(r, c),
                                    config=config, progress=False, report=report):
            pass
        dedup[corpus] = report.as_dict()
    return {"dedup": dedup, "content_hash": None, "artifact": {"output_hash": None}}


# ---------------------------------------------------------------------------------- one measured run
def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(path: str, profile: str) -> dict:
    """Run one path of the data stage in this process, on one CPU; what it measured, as a dict."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    import datasets  # noqa: F401  (both paths need it: imported before the baseline RSS)
    import numpy  # noqa: F401

    from qilin_lib.config import load_config
    from qilin_lib.data.stage import run_data_stage

    cfg = load_config(profile)
    rss_after_imports = _status_mib("VmRSS")
    start = time.perf_counter()
    if path == "new":
        stats = run_data_stage(cfg, force=True, progress=False).stats
    else:
        stats = old_data_stage(cfg) if path == "old" else dedup_only(cfg)
    seconds = time.perf_counter() - start
    dedup = stats["dedup"].values()
    return {"path": path, "seconds": seconds, "peak_mib": _status_mib("VmHWM"),
            "rss_after_imports_mib": rss_after_imports, "content_hash": stats["content_hash"],
            "output_hash": stats["artifact"]["output_hash"],
            "records": sum(d["total"] for d in dedup), "kept": sum(d["kept"] for d in dedup),
            "removed": sum(d["exact_removed"] + d["near_removed"] for d in dedup),
            "index_mib": max(d["index_bytes"] for d in dedup) / 2**20}


def measure(path: str, profile: Path, root: Path) -> dict:
    """`child` in a fresh process (clean peak RSS), pinned to one CPU, its outputs under `root`."""
    env = os.environ | SINGLE_THREAD | {"QILIN_ROOT": str(root), "QILIN_ARTIFACTS": str(root / "artifacts"),
                                         "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    cmd = [sys.executable, __file__, "--child", path, "--profile", str(profile)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the {path} data stage failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ report
def _row(size: float, label: str, mb: float, r: dict) -> str:
    growth = _growth(r)
    text_mib = mb * 1e6 / 2**20
    return (f"{size:>6g} {label:<8} {mb:>8.1f} {r['records']:>9} {r['kept']:>9} {r['removed']:>8} "
            f"{r['seconds']:>8.1f} {mb / r['seconds']:>6.2f} {r['peak_mib']:>9.0f} {growth:>8.0f} "
            f"{growth / text_mib:>7.2f} {r['index_mib']:>7.0f}")


def _growth(r: dict) -> float:
    return r["peak_mib"] - r["rss_after_imports_mib"]


def _ratio_row(size: float, old: dict, new: dict, dedup: dict) -> str:
    """new/old under the seconds, MB/s, peak and growth columns; then new's growth over dedup alone's."""
    ratios = (new["seconds"] / old["seconds"], old["seconds"] / new["seconds"], new["peak_mib"] / old["peak_mib"],
              _growth(new) / max(_growth(old), 1e-9))
    return (f"{size:>6g} {'new/old':<8} {'':>8} {'':>9} {'':>9} {'':>8} {ratios[0]:>7.2f}x {ratios[1]:>5.2f}x "
            f"{ratios[2]:>8.2f}x {ratios[3]:>7.2f}x   new over dedup alone: {_growth(new) - _growth(dedup):+.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1, 2], help="GB of text in total")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and outputs")
    parser.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    parser.add_argument("--child", choices=["old", "new", "dedup"], help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.profile)))
        return
    sample = sample_dir()
    if sample is None:
        print("../shared/data/chimed_format is absent (set QILIN_SHARED_DATA): nothing to measure")
        return
    work = Path(tempfile.mkdtemp(prefix="bench_data_", dir=args.workdir))
    results, mismatches = [], []
    header = (f"{'GB':>6} {'path':<8} {'text MB':>8} {'records':>9} {'kept':>9} {'removed':>8} {'seconds':>8} "
              f"{'MB/s':>6} {'peak MiB':>9} {'growth':>8} {'grw/txt':>7} {'index':>7}")
    try:
        lines = []
        for size in args.sizes:
            data_dir = work / f"{size:g}GB"
            data_dir.mkdir()
            t0 = time.perf_counter()
            written = build_corpora(sample, size, data_dir, args.seed)
            mb = sum(written.values()) / 1e6
            print(f"{size:g} GB: built {mb:.1f} MB ({', '.join(f'{c} {b / 1e6:.1f} MB' for c, b in written.items())}) "
                  f"in {time.perf_counter() - t0:.0f} s", flush=True)
            profile = write_profile(data_dir, data_dir / "profile.yaml")
            runs = {}
            for path in ("new", "old", "dedup"):
                runs[path] = measure(path, profile, data_dir / path)
                print(f"  {path}: {runs[path]['seconds']:.1f} s, peak {runs[path]['peak_mib']:.0f} MiB", flush=True)
                if not args.keep:
                    shutil.rmtree(data_dir / path, ignore_errors=True)
            if runs["old"]["content_hash"] != runs["new"]["content_hash"]:
                mismatches.append(f"{size:g} GB: content_hash old {runs['old']['content_hash']} != "
                                  f"new {runs['new']['content_hash']}")
            results.append({"size_gb": size, "text_mb": mb, "files_mb": {c: b / 1e6 for c, b in written.items()},
                            "old": runs["old"], "new": runs["new"], "dedup": runs["dedup"],
                            "identical_bytes": runs["old"]["output_hash"] == runs["new"]["output_hash"]})
            lines += [_row(size, "old", mb, runs["old"]), _row(size, "new", mb, runs["new"]),
                      _row(size, "dedup", mb, runs["dedup"]), _ratio_row(size, runs["old"], runs["new"], runs["dedup"])]
            if not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nThe data stage, one CPU per path (MB = 10^6 bytes of the three files; RSS and index in MiB; growth = "
          "peak RSS - RSS after imports; grw/txt = growth / text in MiB; index = the largest corpus's dedup index)")
    print(header)
    print("\n".join(lines))
    for r in results:
        same = ("identical bytes" if r["identical_bytes"] else "different bytes (expected past 16 MiB of Arrow per "
                "corpus: state.json's fingerprint; past 500 MB: the shard split)")
        print(f"{r['size_gb']:g} GB: old and new artifacts: {same}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if mismatches:
        raise SystemExit("old and new data stages built DIFFERENT corpora:\n" + "\n".join(mismatches))
    print("old and new data stages built the same corpora (content_hash) at every size")


if __name__ == "__main__":
    main()
