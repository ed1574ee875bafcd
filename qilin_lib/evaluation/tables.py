"""Evaluation tables in the shape of the paper's (md/csv/tex under results/<profile>/tables/), every number
read from the eval_*.json files of the run, published numbers (results/paper/reference.json) in rows of
their own marked `published`, with their source.

    paths = write_eval_tables("tiny")     # {table name: {"md": ..., "csv": ..., "tex": ...}}

Percentages (accuracy, F1, BLEU, GLEU, ROUGE) are x100 with one decimal; Distinct-n is a fraction.
Each table's caption says which scoring mode and answer parser produced its numbers.
"""

from __future__ import annotations

import math

import pandas as pd

from ..paths import tables_dir
from ..reporting import write_table
from .reference import load_reference
from .runner import STAGE_ORDER, load_results

HUATUO_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "gleu", "rouge_1", "rouge_2", "rouge_l",
                  "distinct_1", "distinct_2")
MCQ_MODES = ("generate", "loglik", "cloze_sum", "cloze_token", "cloze_char", "cloze_calibrated")
MODEL_ORDER = (*STAGE_ORDER, "adapt")


class Results:
    """eval_*.json of one profile, looked up by (model, task) and a key path into `metrics`."""

    def __init__(self, profile: str):
        self.profile = profile
        self.by_key = {(r["model"], r["task"]): r for r in load_results(profile)}
        # the stages in pipeline order, then models evaluated under their own label (external checkpoints)
        self.models = [m for m in MODEL_ORDER if any(k[0] == m for k in self.by_key)] + \
            sorted({k[0] for k in self.by_key} - set(MODEL_ORDER))

    def has(self, model: str, task: str) -> bool:
        return (model, task) in self.by_key

    def get(self, model: str, task: str, *path: str) -> float | None:
        node = self.by_key.get((model, task), {}).get("metrics")
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def tasks(self) -> set[str]:
        return {task for _, task in self.by_key}


def _r(value, digits: int = 1):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, digits)


def _published(benchmark: str, columns: dict[str, str], note: str = "") -> list[dict]:
    """Published rows: {column: value} mapped from reference metric names, with their source."""
    rows: dict[str, dict] = {}
    for e in load_reference():
        if e["benchmark"] == benchmark and e["metric"] in columns:
            row = rows.setdefault(e["model"], {"model": e["model"], "kind": "published", "source": set()})
            row[columns[e["metric"]]] = e["value"]
            row["source"].add(e["source"] + (f" ({e['note']})" if e.get("note") else ""))
    return [r | {"source": "; ".join(sorted(r["source"])) + note} for r in rows.values()]


def _mcq_generate(res: Results, model: str, task: str, parser: str, key: str = "accuracy", group: str = ""):
    path = ("generate", parser) + (("by_group", group) if group else ()) + (key,)
    return _r(res.get(model, task, *path))


def _mode(res: Results, model: str, task: str, mode: str, key: str = "accuracy", group: str = ""):
    if mode == "generate":
        return _mcq_generate(res, model, task, _first_parser(res, model, task), key, group)
    path = (mode,) + (("by_group", group) if group else ()) + (key,)
    return _r(res.get(model, task, *path))


def _first_parser(res: Results, model: str, task: str) -> str:
    parsers = res.by_key.get((model, task), {}).get("protocol", {}).get("parsers") or ["cmexam"]
    return parsers[0]


# ------------------------------------------------------------------------------------------ tables
def knowledge_table(res: Results, bench: str) -> pd.DataFrame | None:
    """Tiny profile: accuracy per model and scoring mode on taught vs control diseases, and the
    prior-only baseline (the question with the disease name removed, cloze only)."""
    if not any(res.get(m, bench, "loglik", "by_group") for m in res.models):
        return None
    rows = []
    for model in res.models:
        for group in ("taught", "control"):
            if res.get(model, bench, "loglik", "by_group", group) is None:
                continue
            rows.append({"model": model, "items": group, "n": res.get(model, bench, "loglik", "by_group", group, "n"),
                         **{mode: _mode(res, model, bench, mode, group=group) for mode in MCQ_MODES}})
        for variant, label in (("prior", "prior-only (name removed)"),
                               ("recall", "taught, training wording (diagnostic)")):
            task = f"{bench}_{variant}"
            if not res.has(model, task):
                continue
            group = "taught" if variant == "recall" else ""
            rows.append({"model": model, "items": label,
                         "n": res.get(model, task, "cloze_sum", *(("by_group", group) if group else ()), "n"),
                         **{mode: _mode(res, model, task, mode, group=group) for mode in MCQ_MODES
                            if mode.startswith("cloze")}})
    return pd.DataFrame(rows)


def cmexam_table(res: Results) -> pd.DataFrame | None:
    """Paper Table 5 shape: answer accuracy / weighted F1 and explanation BLEU / ROUGE."""
    ours = []
    for model in res.models:
        if not res.has(model, "cmexam"):
            continue
        expl = res.get(model, "cmexam", "generate_explanation") or {}
        ours.append({"model": model, "kind": f"ours ({res.profile})",
                     "accuracy": _mcq_generate(res, model, "cmexam", "cmexam"),
                     "weighted_f1": _mcq_generate(res, model, "cmexam", "cmexam", "weighted_f1"),
                     "accuracy (strict parser)": _mcq_generate(res, model, "cmexam", "strict"),
                     "accuracy (loglik)": _mode(res, model, "cmexam", "loglik"),
                     "bleu_1": _r(expl.get("bleu_1")), "bleu_4": _r(expl.get("bleu_4")),
                     "rouge_1": _r(expl.get("rouge_1")), "rouge_2": _r(expl.get("rouge_2")),
                     "rouge_l": _r(expl.get("rouge_l")), "source": "this run"})
    if not ours:
        return None
    return pd.DataFrame(ours + _published("cmexam", {"accuracy": "accuracy", "weighted_f1": "weighted_f1"}))


def ceval_table(res: Results) -> pd.DataFrame | None:
    """Paper Table 4 shape: C-Eval medical subjects (val), 5-shot answer-only; generation and next-token."""
    rows = []
    for model in res.models:
        if not res.has(model, "ceval"):
            continue
        row = {"model": model}
        subjects = res.get(model, "ceval", "loglik", "by_subject") or {}
        for mode in ("generate", "loglik"):
            for subject in sorted(subjects):
                key = ("generate", _first_parser(res, model, "ceval")) if mode == "generate" else ("loglik",)
                row[f"{subject} ({mode})"] = _r(res.get(model, "ceval", *key, "by_subject", subject, "accuracy"))
            row[f"average ({mode})"] = _mode(res, model, "ceval", mode)
        rows.append(row)
    return pd.DataFrame(rows) if rows else None


def huatuo_table(res: Results) -> pd.DataFrame | None:
    """Paper Table 6 shape: Huatuo-26M test generation metrics, character tokens."""
    ours = [{"model": m, "kind": f"ours ({res.profile})",
             **{k: _r(res.get(m, "huatuo26m", "generate", k), 3 if k.startswith("distinct") else 2)
                for k in HUATUO_METRICS}, "source": "this run"}
            for m in res.models if res.has(m, "huatuo26m")]
    if not ours:
        return None
    return pd.DataFrame(ours + _published("huatuo26m", {k: k for k in HUATUO_METRICS}))


def rag_table(res: Results) -> pd.DataFrame | None:
    """With and without BM25 retrieval (our retriever: the paper's is unpublished)."""
    rows = []
    for model in res.models:
        for task, label in (("", "no retrieval"), ("_rag", "BM25 top-k")):
            if not res.has(model, f"cmexam{task}") or not any(res.has(model, f"{b}_rag") for b in ("cmexam", "huatuo26m")):
                continue
            rows.append({"model": model, "retrieval": label, "kind": f"ours ({res.profile})",
                         "cmexam accuracy (generate)": _mode(res, model, f"cmexam{task}", "generate"),
                         "cmexam accuracy (loglik)": _mode(res, model, f"cmexam{task}", "loglik"),
                         "huatuo bleu_1": _r(res.get(model, f"huatuo26m{task}", "generate", "bleu_1"), 2),
                         "huatuo rouge_1": _r(res.get(model, f"huatuo26m{task}", "generate", "rouge_1"), 2),
                         "source": "this run"})
    if not rows:
        return None
    published = [r | {"retrieval": "unpublished retriever"} for r in
                 _published("cmexam", {"accuracy": "cmexam accuracy (generate)"}) if r["model"] == "Qilin-Med-RAG"]
    return pd.DataFrame(rows + published)


def voc_table(res: Results) -> pd.DataFrame | None:
    """Verification-of-Choice (our interpretation) against direct answering on the MCQ sets."""
    rows = []
    for model in res.models:
        for bench in ("cmexam", "ceval", "pubmedqa"):
            if not res.has(model, f"{bench}_voc"):
                continue
            key = "macro_f1" if bench == "pubmedqa" else "weighted_f1"
            rows.append({"model": model, "benchmark": bench, "kind": f"ours ({res.profile})",
                         "direct (generate)": _mode(res, model, bench, "generate"),
                         "direct (loglik)": _mode(res, model, bench, "loglik"),
                         "VoC": _r(res.get(model, f"{bench}_voc", "voc", "accuracy")),
                         f"VoC {key}": _r(res.get(model, f"{bench}_voc", "voc", key)), "source": "this run"})
    if not rows:
        return None
    published = [r | {"benchmark": "pubmedqa"} for r in _published("pubmedqa", {"accuracy": "VoC"},
                                                                        " (AntGLM-Med: VoC; others: their methods)")]
    return pd.DataFrame(rows + published)


def pubmedqa_table(res: Results) -> pd.DataFrame | None:
    ours = [{"model": m, "kind": f"ours ({res.profile})",
             "accuracy (generate)": _mode(res, m, "pubmedqa", "generate"),
             "macro_f1 (generate)": _mode(res, m, "pubmedqa", "generate", "macro_f1"),
             "accuracy (loglik)": _mode(res, m, "pubmedqa", "loglik"), "source": "this run"}
            for m in res.models if res.has(m, "pubmedqa")]
    if not ours:
        return None
    return pd.DataFrame(ours + _published("pubmedqa", {"accuracy": "accuracy (generate)"}))


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
                     "DPO held-out chosen>rejected": pref.get("logp_accuracy"),
                     "DPO held-out margin (sum log-prob)": pref.get("logp_margin"),
                     "DPO held-out chosen>rejected (per token)": pref.get("logp_per_token_accuracy")})
    return pd.DataFrame(rows) if rows else None


def adaptation_table(res: Results, bench: str) -> pd.DataFrame | None:
    if not res.has("adapt", bench):
        return None
    rows = []
    for model, label in (("sft", "before (SFT model)"), ("adapt", "after task adaptation")):
        rows.append({"model": model, "when": label,
                     **{f"{mode} accuracy": _mode(res, model, bench, mode) for mode in ("generate", "loglik")},
                     "generate weighted_f1": _mode(res, model, bench, "generate", "weighted_f1")})
    return pd.DataFrame(rows)


CAPTIONS = {
    "eval_knowledge_cmexam": "Knowledge injection, tiny CMExam-style set (5 options, chance 20%): accuracy by "
                             "scoring mode; generate = greedy + CMExam parser; taught = diseases in the DCPT "
                             "corpus, control = in no training text; prior-only = disease name removed",
    "eval_knowledge_ceval": "Knowledge injection, tiny C-Eval-style set (4 options, chance 25%): accuracy by "
                            "scoring mode; generate = 5-shot greedy + C-Eval regex",
    "eval_cmexam": "CMExam (paper Table 5 shape): answer accuracy and weighted F1 (generate, CMExam parser; "
                   "strict parser and next-token loglik beside), explanation BLEU (jieba) and ROUGE (characters)",
    "eval_ceval": "C-Eval medical subjects, val split, 5-shot answer-only (paper Table 4 shape): accuracy",
    "eval_huatuo26m": "Huatuo-26M test (paper Table 6 shape): greedy generation; BLEU-1..4 (nmt), GLEU (nltk), "
                      "ROUGE (nmt) on characters; Distinct-n per output, averaged",
    "eval_rag": "Retrieval-augmented answering: our BM25 (jieba) retriever; the paper's retriever is unpublished",
    "eval_voc": "Verification-of-Choice, OUR interpretation (AntGLM-Med's prompt is unpublished): each option "
                "verified in turn, best verification score wins",
    "eval_pubmedqa": "PubMedQA reasoning-required (yes/no/maybe): accuracy and macro-F1",
    "eval_heldout": "Held-out perplexity on unseen wordings (over the stated facts and whole statements) and "
                    "the model's preference for the chosen answer on held-out DPO pairs",
    "eval_adaptation": "Task adaptation (AntGLM-Med stage 3): LoRA on the benchmark's training split",
}


def eval_tables(profile: str) -> dict[str, pd.DataFrame]:
    res = Results(profile)
    adapt_bench = next((t for t in ("cmexam", "pubmedqa", "ceval") if res.has("adapt", t)), "cmexam")
    tables = {"eval_knowledge_cmexam": knowledge_table(res, "cmexam"),
              "eval_knowledge_ceval": knowledge_table(res, "ceval"),
              "eval_cmexam": cmexam_table(res), "eval_ceval": ceval_table(res), "eval_huatuo26m": huatuo_table(res),
              "eval_rag": rag_table(res), "eval_voc": voc_table(res), "eval_pubmedqa": pubmedqa_table(res),
              "eval_heldout": heldout_table(res), "eval_adaptation": adaptation_table(res, adapt_bench)}
    return {name: df for name, df in tables.items() if df is not None}


def write_eval_tables(profile: str) -> dict[str, dict]:
    return {name: write_table(df, tables_dir(profile), name, CAPTIONS[name])
            for name, df in eval_tables(profile).items()}
