"""Evaluation tables in the shape of the paper's (md/csv/tex under results/<profile>/tables/), every number
read from the eval_*.json files of the run, published numbers (results/paper/reference.json) in rows of
their own marked `published`, with their source.

    paths = write_eval_tables("tiny")     # {table name: {"md": ..., "csv": ..., "tex": ...}}

Each benchmark's own table (`eval_<name>`) comes from its module (qilin_lib.evaluation.benchmarks); the
tables across benchmarks (knowledge injection, RAG, VoC, held-out, task adaptation) are built here from
the rows each benchmark contributes. Percentages (accuracy, F1, BLEU, GLEU, ROUGE) are x100 with one
decimal; Distinct-n is a fraction. Each table's caption says which scoring mode and answer parser produced
its numbers.

Every number of ours carries its 95% interval (qilin_lib.evaluation.results): in the CSV as `<column>
ci95_lo` / `<column> ci95_hi`, in Markdown and LaTeX as one cell `24.4 [19.6, 29.5]`. The knowledge-injection
tables add difference rows (taught - control, and each stage - base on the same items) with a bootstrap
interval of the difference, marked `*` when it excludes 0.
"""

from __future__ import annotations

import pandas as pd

from ..paths import tables_dir
from ..reporting import write_table
from . import benchmarks
from .intervals import independent_difference, paired_difference, wilson
from .results import (
    DIFFERENCE,
    Estimate,
    Results,
    display_frame,
    frame,
    mode_value,
    value,
)

MCQ_MODES = ("generate", "loglik", "cloze_sum", "cloze_token", "cloze_char", "cloze_calibrated")

__all__ = ["MCQ_MODES", "Results", "caption", "display_frame", "eval_tables", "knowledge_table", "write_eval_tables"]


def _registered(kind: str = "") -> list:
    """The registered benchmark classes (of one kind), read when a table is built."""
    return [cls for cls in benchmarks.REGISTRY if not kind or cls.kind == kind]


# ------------------------------------------------------------------------------------------ tables
def knowledge_table(res: Results, bench: str) -> pd.DataFrame | None:
    """Tiny profile: accuracy per model and scoring mode on taught vs control diseases, the prior-only
    baseline (the question with the disease name removed, cloze only), and the differences that carry the
    claim (`knowledge_differences`)."""
    if not any(res.get(m, bench, "loglik", "by_group") for m in res.models):
        return None
    rows = []
    for model in res.models:
        for group in ("taught", "control"):
            if res.get(model, bench, "loglik", "by_group", group) is None:
                continue
            rows.append({"model": model, "items": group, "n": res.get(model, bench, "loglik", "by_group", group, "n"),
                         **{mode: mode_value(res, model, bench, mode, group=group) for mode in MCQ_MODES}})
        for variant, label in (("prior", "prior-only (name removed)"),
                               ("recall", "taught, training wording (diagnostic)")):
            task = f"{bench}_{variant}"
            if not res.has(model, task):
                continue
            group = "taught" if variant == "recall" else ""
            rows.append({"model": model, "items": label,
                         "n": res.get(model, task, "cloze_sum", *(("by_group", group) if group else ()), "n"),
                         **{mode: mode_value(res, model, task, mode, group=group) for mode in MCQ_MODES
                            if mode.startswith("cloze")}})
        rows += knowledge_differences(res, bench, model)
    return frame(rows)


def knowledge_differences(res: Results, bench: str, model: str) -> list[dict]:
    """Rows `Δ taught − control` (different items: stratified bootstrap) and, for a trained stage,
    `Δ taught: <stage> − base` / `Δ control: <stage> − base` (the same items: paired bootstrap), per scoring
    mode, each an accuracy difference in points with its 95% interval; from the predictions files (none
    written: no rows)."""
    spec = res.interval_spec(model, bench)
    by_mode = {mode: res.correctness(model, bench, mode) for mode in MCQ_MODES}
    base = {mode: res.correctness("base", bench, mode) for mode in MCQ_MODES} if model != "base" else {}
    rows = []

    def mean(values) -> float:
        return 100 * sum(values) / len(values)

    cells = {}
    for mode, groups in by_mode.items():
        if groups.get("taught") and groups.get("control"):
            a, b = list(groups["taught"].values()), list(groups["control"].values())
            cells[mode] = Estimate(mean(a) - mean(b), independent_difference(a, b, spec))
    if cells:
        rows.append({"model": model, "items": f"{DIFFERENCE}taught − control", **cells})
    for group in ("taught", "control"):
        cells, n = {}, 0
        for mode, groups in by_mode.items():
            mine, theirs = groups.get(group, {}), base.get(mode, {}).get(group, {})
            shared = sorted(set(mine) & set(theirs))
            if shared:
                a, b = [mine[i] for i in shared], [theirs[i] for i in shared]
                cells[mode], n = Estimate(mean(a) - mean(b), paired_difference(a, b, spec)), len(shared)
        if cells:
            rows.append({"model": model, "items": f"{DIFFERENCE}{group}: {model} − base", "n": n, **cells})
    return rows


def rag_table(res: Results) -> pd.DataFrame | None:
    """With and without BM25 retrieval (our retriever: the paper's is unpublished); each benchmark with a
    retrieval run gives its columns (`rag_columns`)."""
    with_rag = [cls for cls in _registered() if f"{cls.name}_rag" in res.tasks()]
    rows = []
    for model in res.models:
        if not any(res.has(model, f"{cls.name}_rag") for cls in with_rag):
            continue
        for suffix, label in (("", "no retrieval"), ("_rag", "BM25 top-k")):
            rows.append({"model": model, "retrieval": label, "kind": f"ours ({res.profile})",
                         **{k: v for cls in with_rag for k, v in cls.rag_columns(res, model, cls.name + suffix).items()},
                         "source": "this run"})
    return frame(rows + [r for cls in with_rag for r in cls.rag_published()]) if rows else None


def voc_table(res: Results) -> pd.DataFrame | None:
    """Verification-of-Choice (our interpretation) against direct answering on the MCQ sets."""
    rows = []
    for model in res.models:
        for cls in _registered("mcq"):
            bench = cls.name
            if not res.has(model, f"{bench}_voc"):
                continue
            rows.append({"model": model, "benchmark": bench, "kind": f"ours ({res.profile})",
                         "direct (generate)": mode_value(res, model, bench, "generate"),
                         "direct (loglik)": mode_value(res, model, bench, "loglik"),
                         "VoC": value(res, model, f"{bench}_voc", "voc", "accuracy"),
                         f"VoC {cls.f1_key}": value(res, model, f"{bench}_voc", "voc", cls.f1_key), "source": "this run"})
    return frame(rows + [r for cls in _registered("mcq") for r in cls.voc_published()]) if rows else None


def heldout_table(res: Results) -> pd.DataFrame | None:
    """Tiny profile: perplexity on unseen wordings (taught vs control) and held-out DPO preference."""
    rows = []
    for model in res.models:
        if not res.has(model, "heldout"):
            continue
        ppl = res.get(model, "heldout", "probe_perplexity") or {}
        pref = res.get(model, "heldout", "dpo_heldout") or {}
        rows.append({"model": model,
                     "ppl facts (taught)": ppl.get("facts", {}).get("taught"),
                     "ppl facts (control)": ppl.get("facts", {}).get("control"),
                     "ppl statement (taught)": ppl.get("text", {}).get("taught"),
                     "ppl statement (control)": ppl.get("text", {}).get("control"),
                     "DPO held-out chosen>rejected": _share(pref, "logp_accuracy"),
                     "DPO held-out margin (sum log-prob)": pref.get("logp_margin"),
                     "DPO held-out chosen>rejected (per token)": _share(pref, "logp_per_token_accuracy")})
    return frame(rows) if rows else None


def _share(pref: dict, key: str):
    """A held-out preference accuracy (a fraction of `pairs`) with its Wilson interval."""
    share, pairs = pref.get(key), pref.get("pairs")
    if share is None or not pairs:
        return share
    return Estimate(share, wilson(round(share * pairs), pairs), digits=3)


def adaptation_table(res: Results) -> pd.DataFrame | None:
    """The task-adapted model against the SFT model it started from, on its benchmark."""
    bench = next((cls for cls in _registered() if res.has("adapt", cls.name)), None)
    if bench is None:
        return None
    rows = []
    for model, label in (("sft", "before (SFT model)"), ("adapt", "after task adaptation")):
        rows.append({"model": model, "when": label,
                     **{f"{mode} accuracy": mode_value(res, model, bench.name, mode) for mode in ("generate", "loglik")},
                     "generate weighted_f1": mode_value(res, model, bench.name, "generate", "weighted_f1")})
    return frame(rows)


KNOWLEDGE_NOTE = ("; Δ rows: accuracy differences in points, taught − control (different items, stratified "
                  "bootstrap) and stage − base (the same items, paired bootstrap); * = the difference's 95% "
                  "interval excludes 0")
INTERVAL_NOTE = ("; [lo, hi] = 95% interval (accuracy: Wilson; F1, BLEU, GLEU, ROUGE, Distinct: percentile "
                 "bootstrap over items); published rows have none")
CAPTIONS = {
    "eval_rag": "Retrieval-augmented answering: our BM25 (jieba) retriever; the paper's retriever is unpublished",
    "eval_voc": "Verification-of-Choice, OUR interpretation (AntGLM-Med's prompt is unpublished): each option "
                "verified in turn, best verification score wins",
    "eval_heldout": "Held-out perplexity on unseen wordings (over the stated facts and whole statements) and "
                    "the model's preference for the chosen answer on held-out DPO pairs (Wilson interval; "
                    "perplexities and the margin have no interval yet: per-statement losses are not kept)",
    "eval_adaptation": "Task adaptation (AntGLM-Med stage 3): LoRA on the benchmark's training split",
}


def caption(table: str) -> str:
    """A table's caption: the cross-benchmark tables' from CAPTIONS, a benchmark's own from its module."""
    for cls in _registered():
        if table == f"eval_{cls.name}":
            return cls.caption
        if table == f"eval_knowledge_{cls.name}":
            return cls.knowledge_caption + KNOWLEDGE_NOTE
    return CAPTIONS[table]


def eval_tables(profile: str) -> dict[str, pd.DataFrame]:
    res = Results(profile)
    tables = {f"eval_knowledge_{cls.name}": knowledge_table(res, cls.name)
              for cls in _registered("mcq") if cls.knowledge_caption}
    tables |= {f"eval_{cls.name}": cls.table(res) for cls in _registered()}
    tables |= {"eval_rag": rag_table(res), "eval_voc": voc_table(res), "eval_heldout": heldout_table(res),
               "eval_adaptation": adaptation_table(res)}
    return {name: df for name, df in tables.items() if df is not None}


def write_eval_tables(profile: str) -> dict[str, dict]:
    """Every table as CSV (values and `ci95_lo` / `ci95_hi` columns) and Markdown / LaTeX (`v [lo, hi]`)."""
    out = {}
    for name, df in eval_tables(profile).items():
        out[name] = write_table(df, tables_dir(profile), name, caption(name) + INTERVAL_NOTE, display=display_frame(df))
    return out
