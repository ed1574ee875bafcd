"""The data stage's tables (in the shape of the Qilin-Med paper's Tables 1-3) and composition figure.

Built only from the stats that `run_data_stage` computed in this run (results/<profile>/data_stats.json).
Sizes are characters: the tokenizer does not exist yet at this stage, and the paper's own unit is bytes.
"""

from __future__ import annotations

import pandas as pd

from .. import plots
from ..paths import figures_dir, tables_dir
from ..reporting import write_table

CAPTIONS = {
    "table1_chimed_cpt": "ChiMed-CPT composition after deduplication (paper Table 1 shape)",
    "table2_chimed_sft": "ChiMed-SFT composition after deduplication (paper Table 2 shape)",
    "table3_chimed_dpo": "ChiMed-DPO composition after deduplication (paper Table 3 shape)",
    "data_sources": ("Records per source: loaded, skipped as malformed or missing, removed as duplicates; "
                     "removed/kept are summed over the corpora a source feeds (an exam item feeds CPT and SFT); "
                     "DPO is deduplicated on exact triplets only"),
    "eval_sets": "Evaluation sets built by the data stage",
    "decontamination": ("Benchmark test items with an exact or near duplicate (the dedup engine's settings) in each "
                        "training corpus, by key: the question (q_) and question + answer (qa_), each also in "
                        "the layouts the data stage gives exam and QA items; "
                        "records_contaminated/dropped count training records (dropped only under "
                        "data.decontamination.drop, off as in the paper)"),
    "decontamination_examples": "Examples of contaminated test items: the item and the training text it matched",
}


def _corpus_frame(stats: dict, corpus: str, columns: list[str]) -> pd.DataFrame:
    rows = stats["corpora"][corpus]["rows"]
    total = max(stats["corpora"][corpus]["chars"], 1)
    frame = pd.DataFrame([dict(zip(columns, r["group"]), records=r["records"], chars=r["chars"],
                               share_pct=round(100 * r["chars"] / total, 2)) for r in rows],
                         columns=columns + ["records", "chars", "share_pct"])
    total_row = {c: "" for c in columns} | {columns[0]: "total", "records": int(frame["records"].sum()),
                                             "chars": int(frame["chars"].sum()), "share_pct": 100.0}
    return pd.concat([frame, pd.DataFrame([total_row])], ignore_index=True)


def source_frame(stats: dict) -> pd.DataFrame:
    removed: dict[str, dict[str, int]] = {}
    for report in stats["dedup"].values():
        for source, counts in report["per_source"].items():
            slot = removed.setdefault(source, {"exact_removed": 0, "near_removed": 0, "kept": 0})
            for key in slot:
                slot[key] += counts[key]
    rows = []
    for src in stats["sources"]:
        name = src["source"]
        reasons = "; ".join(f"{k} ({v})" for k, v in sorted(src["skip_reasons"].items()))
        rows.append({"source": name, "loaded": src["loaded"], "skipped": src["skipped"],
                     "skip_reasons": reasons or "-", **removed.pop(name, {})})
    for name, counts in sorted(removed.items()):  # corpora whose records carry finer source tags
        rows.append({"source": name, "loaded": "", "skipped": "", "skip_reasons": "", **counts})
    return pd.DataFrame(rows).fillna(0)


DECONTAMINATION_KEYS = {"question": "q", "question_answer": "qa"}


def decontamination_frame(stats: dict) -> pd.DataFrame:
    """One row per corpus and benchmark; benchmarks that could not be read get a row saying why."""
    report = stats["decontamination"]
    rows = []
    for corpus, tally in report["corpora"].items():
        for bench, keys in tally["benchmarks"].items():
            row = {"corpus": corpus, "benchmark": bench, "items": keys["question"]["items"]}
            for key, prefix in DECONTAMINATION_KEYS.items():
                figures = keys[key]
                share = figures["share"]
                row |= {f"{prefix}_contaminated": figures["contaminated"], f"{prefix}_exact": figures["exact"],
                        f"{prefix}_near": figures["near"],
                        f"{prefix}_share_pct": None if share is None else round(100 * share, 2)}
            rows.append(row | {"records_contaminated": tally["records_contaminated"],
                               "records_dropped": tally["records_dropped"], "note": ""})
        for bench, reason in report["not_checked"].items():
            rows.append({"corpus": corpus, "benchmark": bench, "note": f"not checked: {reason}"})
        if not tally["benchmarks"] and not report["not_checked"]:
            rows.append({"corpus": corpus, "benchmark": "", "records_contaminated": tally["records_contaminated"],
                         "records_dropped": tally["records_dropped"],
                         "note": "not checked: the profile names no data.benchmarks"})
    if not rows:
        raise ValueError("data_stats.json has no decontamination figures (no corpus was built)")
    return pd.DataFrame(rows)


def decontamination_examples_frame(stats: dict) -> pd.DataFrame:
    rows = [{"corpus": corpus, "benchmark": bench, "key": key, **example}
            for corpus, tally in stats["decontamination"]["corpora"].items()
            for bench, keys in tally["benchmarks"].items() for key in DECONTAMINATION_KEYS
            for example in keys[key]["examples"]]
    columns = ["corpus", "benchmark", "key", "id", "match", "similarity", "training_snippet"]
    return pd.DataFrame(rows, columns=columns)


def data_tables(stats: dict) -> dict[str, pd.DataFrame]:
    examples = decontamination_examples_frame(stats)
    return {
        "table1_chimed_cpt": _corpus_frame(stats, "cpt", ["subset", "source"]),
        "table2_chimed_sft": _corpus_frame(stats, "sft", ["category", "turns", "source"]),
        "table3_chimed_dpo": _corpus_frame(stats, "dpo", ["source"]),
        "data_sources": source_frame(stats),
        "eval_sets": pd.DataFrame(sorted(stats["eval_sets"].items()), columns=["eval_set", "items"]),
        "decontamination": decontamination_frame(stats),
        # Without a contaminated item there is nothing to show (the tiny profile): no empty table
        **({"decontamination_examples": examples} if len(examples) else {}),
    }


def write_data_tables(stats: dict, profile: str) -> dict[str, pd.DataFrame]:
    tables = data_tables(stats)
    for name, frame in tables.items():
        write_table(frame, tables_dir(profile), name, CAPTIONS[name])
    return tables


def composition_figure(stats: dict, profile: str):
    """Characters per corpus, stacked by CPT subset / SFT category+turns / DPO source."""
    groups = {}
    for corpus in ("cpt", "sft", "dpo"):
        parts: dict[str, float] = {}
        for row in stats["corpora"][corpus]["rows"]:
            # CPT: subset; SFT: category/turns; DPO: source (the paper's table rows)
            label = "/".join(row["group"][:1] if corpus != "sft" else row["group"][:2])
            label = f"{corpus.upper()} {label}"
            parts[label] = parts.get(label, 0.0) + row["chars"] / 1e3
        groups[f"ChiMed-{corpus.upper()}"] = parts
    fig, _ = plots.stacked_bars(groups, f"ChiMed composition ({profile} profile)", "thousand characters")
    return plots.save(fig, figures_dir(profile), "data_composition")
