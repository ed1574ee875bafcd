"""The data stage (notebook 01): sources -> uniform records -> dedup -> ChiMed-CPT/SFT/DPO + eval sets.

    result = run_data_stage(load_config("tiny"))
    result.stats            # what results/<profile>/data_stats.json holds
    load_corpus(cfg, "cpt") # a datasets.Dataset, for the training notebooks

The output directory lives in the artifact cache, keyed by the data config and the fingerprints of the
inputs, so a rerun with the same inputs reuses it (unless `force`), and a failure leaves nothing that
looks complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..cache import StageArtifact, atomic_write_json, hash_obj
from ..config import ProfileConfig
from ..paths import results_dir
from . import chimed
from .dedup import dedup_records
from .io import HUB_PREFIX, resolve_path

STAGE = "data"
STATS_FILE = "data_stats.json"


@dataclass
class DataStageResult:
    path: Path            # the complete artifact directory
    stats: dict           # corpus composition, per-source load/skip/dedup counts
    reused: bool          # True when the cache already held this exact build


# ------------------------------------------------------------------------------------- collecting
def _tiny_inputs(cfg: ProfileConfig) -> tuple[dict, dict, list[dict], dict]:
    """Generate every corpus from the embedded knowledge base (DESIGN.md section 3)."""
    from .tiny import generate_tiny_corpora

    corpora = generate_tiny_corpora(cfg.data.tiny, seed=cfg.seed)
    routed = {"cpt": [], "sft": [], "dpo": []}
    for subset, recs in (("kg", corpora.cpt_kg), ("text", corpora.cpt_text),
                         ("qa", corpora.cpt_qa), ("dialogue", corpora.cpt_dialogue)):
        routed["cpt"] += chimed.route(recs, "cpt", {"subset": subset})["cpt"]
    for category, recs in (("medical", corpora.sft_medical_single), ("medical", corpora.sft_medical_multi),
                           ("general", corpora.sft_general)):
        routed["sft"] += chimed.route(recs, "sft", {"category": category})["sft"]
    routed["dpo"] = chimed.route(corpora.dpo_train, "dpo")["dpo"]
    evals = {"cmexam": corpora.eval_cmexam, "cmexam_train": corpora.eval_cmexam_train, "ceval_dev": corpora.eval_ceval_dev,
             "ceval_val": corpora.eval_ceval_val, "qa": corpora.eval_qa,
             "dpo_heldout": corpora.dpo_heldout, "probe_texts": corpora.probe_texts}
    # One row per record source tag, so the per-source table lines up with the dedup counts.
    generated = Counter(rec["source"] for recs in routed.values() for rec in recs)
    load_stats = [{"source": tag, "path": "generated (qilin_lib.data.tiny)", "loaded": n, "skipped": 0,
                   "skip_reasons": {}} for tag, n in sorted(generated.items())]
    return routed, evals, load_stats, {"tiny": corpora.metadata}


def _source_inputs(cfg: ProfileConfig, progress: bool) -> tuple[dict, dict, list[dict], dict]:
    """Load every source of the profile with its loader and route it (the `paper` / `gpu-small` path)."""
    from .sources import LOADER_KINDS, load_source

    routed: dict[str, list] = {"cpt": [], "sft": [], "dpo": []}
    evals, load_stats = {}, []
    for spec in tqdm(cfg.data.sources, desc="load sources", disable=not progress):
        kind = LOADER_KINDS[spec["loader"]]
        recs = load_source(spec["loader"], resolve_path(spec["path"]), errors=cfg.data.errors,
                           max_records=cfg.data.max_records_per_source, **spec.get("options", {}))
        for rec in recs:  # the profile's source name wins over the loader's default tag
            rec["source"] = spec["name"]
        stats = recs.stats.as_dict() | {"source": spec["name"], "path": str(spec["path"])}
        check_skips(stats, cfg.data.max_skip_fraction)
        load_stats.append(stats)
        if spec.get("stage") == "eval" or kind == "pubmedqa":
            evals[spec["name"]] = list(recs)
            continue
        for corpus, out in chimed.route(recs, kind, spec).items():
            routed[corpus] += out
    return routed, evals, load_stats, {}


class SourceRejected(ValueError):
    """A source that loaded nothing, or skipped more of its records than `data.max_skip_fraction`."""


def check_skips(stats: dict, max_fraction: float) -> None:
    """Stop the data stage on a source whose records were all (or too many) skipped under errors="skip": a
    reader that does not understand a file's layout would otherwise leave its corpus silently empty."""
    loaded, skipped = stats["loaded"], stats["skipped"]
    if loaded and skipped <= max_fraction * (loaded + skipped):
        return
    what = "loaded no records" if not loaded else f"skipped {skipped / (loaded + skipped):.1%} of its records"
    raise SourceRejected(f"source {stats['source']!r} ({stats['path']}) {what}: {loaded} loaded, {skipped} skipped "
                         f"(data.max_skip_fraction {max_fraction}); reasons {stats['skip_reasons']}; first: "
                         + " | ".join(stats.get("skip_examples", [])))


def input_fingerprints(cfg: ProfileConfig) -> dict[str, str]:
    """What the data artifact's key depends on besides the config: the inputs and the code that reads them.

    Code: every module of qilin_lib/data (loaders, generators, dedup, this stage), so a fix anywhere in
    the data path rebuilds the corpora instead of silently reusing stale ones. Local files: size +
    SHA-256 of the first and last 4 MiB (a full hash of a 5 GB corpus costs more than the stage it
    guards). Hub files: the spec itself (the hub pins revisions, not us).
    """
    data_dir = Path(__file__).parent
    code = b"".join(str(p.relative_to(data_dir)).encode() + b"\0" + p.read_bytes()
                    for p in sorted(data_dir.rglob("*.py")))
    prints = {"code": hashlib.sha256(code).hexdigest()[:16]}
    if cfg.data.generator == "tiny_kb":
        from importlib import resources

        kb = resources.files("qilin_lib.data.kb").joinpath("tiny_kb.json").read_bytes()
        return prints | {"tiny_kb": hashlib.sha256(kb).hexdigest()[:16]}
    for spec in cfg.data.sources:
        path = str(spec["path"])
        prints[spec["name"]] = path if path.startswith(HUB_PREFIX) else _file_fingerprint(Path(path).expanduser())
    return prints


def _file_fingerprint(path: Path, window: int = 4 << 20) -> str:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (a data source of this profile)")
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(window))
        if path.stat().st_size > window:
            fh.seek(-window, 2)
            digest.update(fh.read(window))
    return digest.hexdigest()[:16]


def data_artifact(cfg: ProfileConfig) -> StageArtifact:
    config = {"data": dataclasses.asdict(cfg.data), "seed": cfg.seed}
    return StageArtifact(cfg.name, STAGE, config=config, inputs=input_fingerprints(cfg))


# ------------------------------------------------------------------------------------------- stage
def run_data_stage(cfg: ProfileConfig, force: bool = False, progress: bool = True) -> DataStageResult:
    art = data_artifact(cfg)
    reused = art.complete and not force
    if not reused:
        start = time.perf_counter()
        collect = _tiny_inputs if cfg.data.generator == "tiny_kb" else _source_inputs
        args = (cfg,) if collect is _tiny_inputs else (cfg, progress)
        routed, evals, load_stats, metadata = collect(*args)
        timing: dict = {}  # goes to the manifest, not into the hashed outputs: reruns hash the same
        with art.writing(extra=timing) as out:
            stats, kept_cpt = _dedup_and_save(routed, evals, out, cfg, progress)
            stats.update(profile=cfg.name, generator=cfg.data.generator, sources=load_stats, **metadata)
            if "tiny" in stats:  # what DCPT will really see: exposures counted after deduplication
                from .tiny import count_exposures

                groups = stats["tiny"]["groups"]
                stats["tiny"]["exposures_per_fact_per_epoch_after_dedup"] = count_exposures(
                    kept_cpt, groups["dcpt"] + groups["sft"])
            (out / STATS_FILE).write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")
            timing["build_seconds"] = round(time.perf_counter() - start, 2)
    stats = json.loads((art.path / STATS_FILE).read_text("utf-8"))
    stats["artifact"] = {"key": art.key, "output_hash": art.manifest["output_hash"]}
    atomic_write_json(results_dir(cfg.name) / STATS_FILE, stats)
    stats["build_seconds"] = art.manifest.get("build_seconds")  # for the notebook; not committed
    return DataStageResult(path=art.path, stats=stats, reused=reused)


def _dedup_and_save(routed: dict, evals: dict, out: Path, cfg: ProfileConfig,
                    progress: bool) -> tuple[dict, list[dict]]:
    from datasets import Dataset

    corpora, dedup = {}, {}
    for corpus in chimed.CORPORA:
        # Preference pairs built from one ranking share prompt and chosen answer and differ in the rejected
        # one: near-duplicate text, distinct training signal. DPO is therefore deduplicated exactly only.
        dedup_cfg = dataclasses.replace(cfg.data.dedup, near=False) if corpus == "dpo" else cfg.data.dedup
        kept, report = dedup_records(routed.get(corpus, []), text_key=lambda r, c=corpus: chimed.dedup_text(r, c),
                                     config=dedup_cfg, progress=progress)
        dedup[corpus] = report.as_dict()
        corpora[corpus] = kept
        _save(Dataset, kept, out / f"chimed_{corpus}")
    for name, recs in evals.items():
        _save(Dataset, recs, out / "eval" / name)
    stats = {"corpora": {c: corpus_stats(c, recs) for c, recs in corpora.items()},
             "eval_sets": {name: len(recs) for name, recs in evals.items()},
             "dedup": dedup,
             "content_hash": hash_obj({c: [hash_obj(r) for r in recs] for c, recs in corpora.items()})}
    return stats, corpora["cpt"]


def _save(Dataset, recs: list[dict], path: Path) -> None:
    columns = sorted({key for rec in recs for key in rec})
    rows = [{key: rec.get(key) for key in columns} for rec in recs]
    Dataset.from_list(rows).save_to_disk(str(path)) if rows else path.mkdir(parents=True)


# ------------------------------------------------------------------------------------- statistics
def corpus_stats(corpus: str, recs: list[dict]) -> dict:
    """Counts behind the paper's Tables 1-3 (ChiMed-CPT / -SFT / -DPO composition)."""
    by_group: Counter = Counter()
    chars: Counter = Counter()
    for rec in recs:
        group = {"cpt": lambda r: (r["subset"], r["source"]),
                 "sft": lambda r: (r.get("category", "medical"), r.get("turns", "single"), r["source"]),
                 "dpo": lambda r: (r["source"],)}[corpus](rec)
        by_group[group] += 1
        chars[group] += len(chimed.dedup_text(rec, corpus))
    rows = [{"group": list(g), "records": n, "chars": chars[g]} for g, n in sorted(by_group.items())]
    return {"records": len(recs), "chars": sum(chars.values()), "rows": rows}


def load_corpus(cfg: ProfileConfig, name: str):
    """A built corpus (`cpt`, `sft`, `dpo`) or eval set (`eval/cmexam`, ...) as a datasets.Dataset."""
    from datasets import load_from_disk

    art = data_artifact(cfg)
    if not art.complete:
        raise FileNotFoundError(f"no complete data artifact for profile {cfg.name!r} at {art.path}: "
                                "run notebook 01 (or `qilin reproduce --only 01`) first")
    sub = name if name.startswith("eval/") else f"chimed_{name}"
    return load_from_disk(str(art.path / sub))
