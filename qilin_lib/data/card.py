"""The data card (results/<profile>/DATA_CARD.md): what each corpus was built from, under which licence,
what deduplication and the contamination check did to it. Written by the data stage from the statistics it
has just written to data_stats.json, so that every count in the card is one of those.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..cache import atomic_write_text
from ..paths import results_dir
from ..reporting import markdown

CARD_FILE = "DATA_CARD.md"
CORPUS_NAMES = {"cpt": "ChiMed-CPT", "sft": "ChiMed-SFT", "dpo": "ChiMed-DPO"}

# Licences, matched on a source's name or path (lower case). Each from the dataset's own statement, as
# ../shared/data/<dir>/SOURCE.md records it; where nothing is stated we say "unknown".
LICENCES = {
    # williamliu/ChiMed (the released corpora): shared/data/chimed_format/SOURCE.md states no licence
    "chimed": "unknown (not stated)",
    # shared/data/cmexam/SOURCE.md: williamliujl/CMExam LICENSE file; its README adds the research-only clause
    "cmexam": "Apache-2.0 (README: academic/research use only)",
    # shared/data/ceval_medical/SOURCE.md: hkust-nlp/ceval LICENSE-DATA / README (code MIT)
    "ceval": "CC BY-NC-SA 4.0",
    # shared/data/huatuo26m_test/SOURCE.md: Huatuo-26M README and the hub dataset card
    "huatuo26m": "Apache-2.0",
    "huatuo-26m": "Apache-2.0",
    # shared/data/pubmedqa/SOURCE.md: pubmedqa/pubmedqa LICENSE
    "pubmedqa": "MIT",
    # shared/data/medqa_mainland_test/SOURCE.md: jind11/MedQA LICENSE (the Alpaca conversion's fork adds none)
    "medqa_mcmle": "MIT",
    "medqa_mainland": "MIT",
    # shared/data/cnmleqa/SOURCE.md: no licence file or statement in zonghui0228/CNMLEQA
    "cnmle": "unknown (not stated)",
    # the tiny profile's corpora are generated from the repo's own knowledge base (README, "Data sources")
    "generated (qilin_lib.data.tiny)": "CC0 (qilin_lib/data/kb/tiny_kb.json, written for this repo)",
}


def licence(*names: str) -> str:
    text = " ".join(names).lower()
    return next((lic for key, lic in LICENCES.items() if key in text), "unknown")


def _sources_frame(stats: dict, corpus: str) -> pd.DataFrame:
    """Per source feeding `corpus`: path, licence, load/skip counts, what dedup removed and kept."""
    loaded = {src["source"]: src for src in stats["sources"]}
    rows = []
    for name, counts in sorted(stats["dedup"][corpus]["per_source"].items()):
        src = loaded.get(name, {})
        path = str(src.get("path", "unknown"))
        reasons = "; ".join(f"{k} ({v})" for k, v in sorted(src.get("skip_reasons", {}).items())) or "-"
        rows.append({"source": name, "path or hub id": path, "licence": licence(name, path),
                     "loaded": src.get("loaded"), "skipped": src.get("skipped"), "skip_reasons": reasons,
                     "records in": counts["total"], "exact removed": counts["exact_removed"],
                     "near removed": counts["near_removed"], "kept": counts["kept"]})
    return pd.DataFrame(rows)


def _corpus_section(stats: dict, corpus: str) -> list[str]:
    dedup, built = stats["dedup"][corpus], stats["corpora"][corpus]
    decon = stats["decontamination"]["corpora"][corpus]
    lines = [f"- records before deduplication: {dedup['total']:,}",
             f"- records after deduplication: {dedup['kept']:,} (exact removed {dedup['exact_removed']:,}, "
             f"near removed {dedup['near_removed']:,})",
             f"- records contaminated (a benchmark test item duplicated in them): {decon['records_contaminated']:,}; "
             f"dropped: {decon['records_dropped']:,}",
             f"- records written: {built['records']:,}; characters: {built['chars']:,}"]
    parts = [f"### {CORPUS_NAMES[corpus]} (`{corpus}`)", "\n".join(lines)]
    sources = _sources_frame(stats, corpus)
    if len(sources):
        parts.append(markdown(sources))
    return parts


def _dedup_section(stats: dict) -> list[str]:
    rows = []
    for corpus, report in stats["dedup"].items():
        rows.append({"corpus": corpus, "exact": report["config"].get("exact"), "near": report["config"].get("near"),
                     **report["thresholds"], "ngram": report["config"].get("ngram"),
                     "num_perm": report["config"].get("num_perm")})
    normalization = next(iter(stats["dedup"].values()))["normalization"] if stats["dedup"] else ""
    return ["## Deduplication settings",
            "Lee et al. 2022 as `qilin_lib.data.dedup` implements it (exact after normalisation, then MinHash-LSH "
            f"near duplicates verified on sketches); DPO exact only. Normalisation: {normalization}.",
            markdown(pd.DataFrame(rows))]


def _contamination_section(stats: dict) -> list[str]:
    from .tables import decontamination_examples_frame, decontamination_frame

    report = stats["decontamination"]
    parts = ["## Benchmark contamination",
             "Test items with an exact or near duplicate in each corpus (`qilin_lib.data.decontam`), by key: "
             + "; ".join(f"`{k}` = {v}" for k, v in report["keys"].items())
             + f". Dropping contaminated records (`data.decontamination.drop`): {'on' if report['drop'] else 'off'}.",
             markdown(decontamination_frame(stats))]
    examples = decontamination_examples_frame(stats)
    if len(examples):
        parts += ["Examples:", markdown(examples)]
    benches = [{"benchmark": name, "test items": n, "licence": licence(name)}
               for name, n in report["benchmarks"].items()]
    benches += [{"benchmark": name, "test items": None, "licence": licence(name)} for name in report["not_checked"]]
    if benches:
        parts += ["Benchmarks checked:", markdown(pd.DataFrame(benches))]
    return parts


def data_card(stats: dict) -> str:
    parts = [f"# Data card: profile `{stats['profile']}`",
             "Written by the data stage (`qilin data`, notebook 01) with "
             f"`results/{stats['profile']}/data_stats.json`; every count here is one of that file's. "
             f"Generator: `{stats['generator']}`. Licences are what each "
             "dataset's own repository states (see `qilin_lib/data/card.py`); \"unknown\" where none is stated.",
             "## Corpora"]
    for corpus in stats["corpora"]:
        parts += _corpus_section(stats, corpus)
    parts += _dedup_section(stats) + _contamination_section(stats)
    return "\n\n".join(parts) + "\n"


def write_data_card(stats: dict, profile: str) -> Path:
    return atomic_write_text(results_dir(profile) / CARD_FILE, data_card(stats))
