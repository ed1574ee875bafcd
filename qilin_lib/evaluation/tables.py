"""Evaluation tables in the shape of the paper's (md/csv/tex under results/<profile>/tables/), every number
read from the eval_*.json files of the run, published numbers (results/paper/reference.json) in rows of
their own marked `published`, with their source.

    paths = write_eval_tables("tiny")     # {table name: {"md": ..., "csv": ..., "tex": ...}}

Percentages (accuracy, F1, BLEU, GLEU, ROUGE) are x100 with one decimal; Distinct-n is a fraction.
Each table's caption says which scoring mode and answer parser produced its numbers.

Every number of ours carries its 95% interval (qilin_lib.evaluation.intervals; `<metric>_ci95` in the
result JSON): the CSV keeps it machine-readable in two columns beside the value, `<column> ci95_lo` and
`<column> ci95_hi`; Markdown and LaTeX show one cell `24.4 [19.6, 29.5]`. Published rows have no interval.
The knowledge-injection tables add difference rows (taught - control, and each stage - base on the same
items) with a bootstrap interval of the difference, marked `*` when it excludes 0.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from ..paths import results_dir, tables_dir
from ..reporting import write_table
from .intervals import SUFFIX, IntervalSpec, excludes_zero, independent_difference, paired_difference, wilson
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
        self._predictions: dict[tuple[str, str], list[dict]] = {}

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

    def interval_spec(self, model: str, task: str) -> IntervalSpec:
        """The resamples and seed the run drew its intervals with (defaults for older results)."""
        recorded = self.by_key.get((model, task), {}).get("protocol", {}).get("intervals") or {}
        default = IntervalSpec()
        return IntervalSpec(recorded.get("resamples", default.resamples), recorded.get("seed", default.seed))

    def correctness(self, model: str, task: str, mode: str) -> dict[str, dict[str, float]]:
        """{group: {item id: 1.0 if right else 0.0}} of one scoring mode, from predictions/<model>_<task>.jsonl
        (generate: the first parser's reading, as the tables' generate column); {} without that file."""
        path = results_dir(self.profile) / "predictions" / f"{model}_{task}.jsonl"
        if (model, task) not in self._predictions:
            rows = [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()] if path.exists() else []
            self._predictions[(model, task)] = rows
        out: dict[str, dict[str, float]] = {}
        for row in self._predictions[(model, task)]:
            if row["mode"] == mode and row.get("group"):
                out.setdefault(row["group"], {})[row["id"]] = float(bool(row["pred"]) and row["pred"] == row["answer"])
        return out


def _r(value, digits: int = 1):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, digits)


LO, HI = " ci95_lo", " ci95_hi"   # CSV columns of a value's interval: "<column> ci95_lo", "<column> ci95_hi"
MARK = " *"                       # a difference whose interval excludes 0


class Estimate(float):
    """A table value with its 95% interval: a float to every reader (comparisons, plots), expanded by
    `_frame` into the value and its `ci95_lo` / `ci95_hi` columns."""

    def __new__(cls, value: float, interval, digits: int = 1):
        est = super().__new__(cls, round(value, digits))
        est.lo, est.hi = (round(float(b), digits) for b in interval)
        est.digits = digits
        return est


def _val(res: Results, model: str, task: str, *path: str, digits: int = 1):
    """The metric at `path`, rounded, as an Estimate when the result holds its interval beside it."""
    value = _r(res.get(model, task, *path), digits)
    interval = res.get(model, task, *path[:-1], path[-1] + SUFFIX) if path else None
    return value if value is None or interval is None else Estimate(value, interval, digits)


def _frame(rows: list[dict]) -> pd.DataFrame:
    """A table from row dicts, each Estimate expanded into its value and `ci95_lo` / `ci95_hi` columns."""
    expanded, digits = [], {}
    for row in rows:
        out = {}
        for key, value in row.items():
            out[key] = float(value) if isinstance(value, Estimate) else value
            if isinstance(value, Estimate):
                out[key + LO], out[key + HI] = value.lo, value.hi
                digits[key] = value.digits
        expanded.append(out)
    df = pd.DataFrame(expanded)
    df.attrs["digits"] = digits  # what display_frame prints each interval column with
    return df


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x))


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Markdown / LaTeX / notebook view: `value [lo, hi]` in one cell and the interval columns dropped;
    difference rows (`items` starting with DIFFERENCE) are signed and get MARK where the interval excludes 0."""
    marked = df["items"].astype(str).str.startswith(DIFFERENCE) if "items" in df.columns else None
    out = df.copy()
    for col in [c for c in df.columns if f"{c}{LO}" in df.columns]:
        cells = []
        for i, (v, lo, hi) in enumerate(zip(df[col], df[col + LO], df[col + HI])):
            if not (_number(v) and _number(lo) and _number(hi)):
                cells.append(v)
                continue
            difference = marked is not None and bool(marked.iloc[i])
            mark = MARK if difference and excludes_zero((lo, hi)) else ""
            d = df.attrs.get("digits", {}).get(col, 1)
            cells.append(f"{v:{'+' if difference else ''}.{d}f} [{lo:.{d}f}, {hi:.{d}f}]{mark}")
        out[col] = pd.Series(cells, index=df.index, dtype=object)
        out = out.drop(columns=[col + LO, col + HI])
    return out


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
    return _val(res, model, task, *path)


def _mode(res: Results, model: str, task: str, mode: str, key: str = "accuracy", group: str = ""):
    if mode == "generate":
        return _mcq_generate(res, model, task, _first_parser(res, model, task), key, group)
    path = (mode,) + (("by_group", group) if group else ()) + (key,)
    return _val(res, model, task, *path)


def _first_parser(res: Results, model: str, task: str) -> str:
    parsers = res.by_key.get((model, task), {}).get("protocol", {}).get("parsers") or ["cmexam"]
    return parsers[0]


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
        rows += knowledge_differences(res, bench, model)
    return _frame(rows)


DIFFERENCE = "Δ "   # the `items` label of a difference row starts with it (display_frame marks those rows)


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


def cmexam_table(res: Results) -> pd.DataFrame | None:
    """Paper Table 5 shape: answer accuracy / weighted F1 and explanation BLEU / ROUGE."""
    ours = []
    for model in res.models:
        if not res.has(model, "cmexam"):
            continue
        ours.append({"model": model, "kind": f"ours ({res.profile})",
                     "accuracy": _mcq_generate(res, model, "cmexam", "cmexam"),
                     "weighted_f1": _mcq_generate(res, model, "cmexam", "cmexam", "weighted_f1"),
                     "accuracy (strict parser)": _mcq_generate(res, model, "cmexam", "strict"),
                     "accuracy (loglik)": _mode(res, model, "cmexam", "loglik"),
                     **{k: _val(res, model, "cmexam", "generate_explanation", k)
                        for k in ("bleu_1", "bleu_4", "rouge_1", "rouge_2", "rouge_l")}, "source": "this run"})
    if not ours:
        return None
    return _frame(ours + _published("cmexam", {"accuracy": "accuracy", "weighted_f1": "weighted_f1"}))


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
                row[f"{subject} ({mode})"] = _val(res, model, "ceval", *key, "by_subject", subject, "accuracy")
            row[f"average ({mode})"] = _mode(res, model, "ceval", mode)
        rows.append(row)
    return _frame(rows) if rows else None


def huatuo_table(res: Results) -> pd.DataFrame | None:
    """Paper Table 6 shape: Huatuo-26M test generation metrics, character tokens."""
    ours = [{"model": m, "kind": f"ours ({res.profile})",
             **{k: _val(res, m, "huatuo26m", "generate", k, digits=3 if k.startswith("distinct") else 2)
                for k in HUATUO_METRICS}, "source": "this run"}
            for m in res.models if res.has(m, "huatuo26m")]
    if not ours:
        return None
    return _frame(ours + _published("huatuo26m", {k: k for k in HUATUO_METRICS}))


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
                         "huatuo bleu_1": _val(res, model, f"huatuo26m{task}", "generate", "bleu_1", digits=2),
                         "huatuo rouge_1": _val(res, model, f"huatuo26m{task}", "generate", "rouge_1", digits=2),
                         "source": "this run"})
    if not rows:
        return None
    published = [r | {"retrieval": "unpublished retriever"} for r in
                 _published("cmexam", {"accuracy": "cmexam accuracy (generate)"}) if r["model"] == "Qilin-Med-RAG"]
    return _frame(rows + published)


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
                         "VoC": _val(res, model, f"{bench}_voc", "voc", "accuracy"),
                         f"VoC {key}": _val(res, model, f"{bench}_voc", "voc", key), "source": "this run"})
    if not rows:
        return None
    published = [r | {"benchmark": "pubmedqa"} for r in _published("pubmedqa", {"accuracy": "VoC"},
                                                                        " (AntGLM-Med: VoC; others: their methods)")]
    return _frame(rows + published)


def pubmedqa_table(res: Results) -> pd.DataFrame | None:
    """Accuracy, macro-F1 as PubMedQA's evaluation.py computes it, then macro-F1 over exactly yes/no/maybe."""
    ours = [{"model": m, "kind": f"ours ({res.profile})",
             "accuracy (generate)": _mode(res, m, "pubmedqa", "generate"),
             "macro_f1 (generate)": _mode(res, m, "pubmedqa", "generate", "macro_f1"),
             "macro_f1_fixed_labels (generate)": _mode(res, m, "pubmedqa", "generate", "macro_f1_fixed_labels"),
             "accuracy (loglik)": _mode(res, m, "pubmedqa", "loglik"), "source": "this run"}
            for m in res.models if res.has(m, "pubmedqa")]
    if not ours:
        return None
    return _frame(ours + _published("pubmedqa", {"accuracy": "accuracy (generate)"}))


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
    return _frame(rows) if rows else None


def _share(pref: dict, key: str):
    """A held-out preference accuracy (a fraction of `pairs`) with its Wilson interval."""
    value, pairs = pref.get(key), pref.get("pairs")
    if value is None or not pairs:
        return value
    return Estimate(value, wilson(round(value * pairs), pairs), digits=3)


def adaptation_table(res: Results, bench: str) -> pd.DataFrame | None:
    if not res.has("adapt", bench):
        return None
    rows = []
    for model, label in (("sft", "before (SFT model)"), ("adapt", "after task adaptation")):
        rows.append({"model": model, "when": label,
                     **{f"{mode} accuracy": _mode(res, model, bench, mode) for mode in ("generate", "loglik")},
                     "generate weighted_f1": _mode(res, model, bench, "generate", "weighted_f1")})
    return _frame(rows)


KNOWLEDGE_NOTE = ("; Δ rows: accuracy differences in points, taught − control (different items, stratified "
                  "bootstrap) and stage − base (the same items, paired bootstrap); * = the difference's 95% "
                  "interval excludes 0")
INTERVAL_NOTE = ("; [lo, hi] = 95% interval (accuracy: Wilson; F1, BLEU, GLEU, ROUGE, Distinct: percentile "
                 "bootstrap over items); published rows have none")
CAPTIONS = {
    "eval_knowledge_cmexam": "Knowledge injection, tiny CMExam-style set (5 options, chance 20%): accuracy by "
                             "scoring mode; generate = greedy + CMExam parser; taught = diseases in the DCPT "
                             "corpus, control = in no training text; prior-only = disease name removed"
                             + KNOWLEDGE_NOTE,
    "eval_knowledge_ceval": "Knowledge injection, tiny C-Eval-style set (4 options, chance 25%): accuracy by "
                            "scoring mode; generate = 5-shot greedy + C-Eval regex" + KNOWLEDGE_NOTE,
    "eval_cmexam": "CMExam (paper Table 5 shape): answer accuracy and weighted F1 (generate, CMExam parser; "
                   "strict parser and next-token loglik beside), explanation BLEU (jieba) and ROUGE (characters)",
    "eval_ceval": "C-Eval medical subjects, val split, 5-shot answer-only (paper Table 4 shape): accuracy",
    "eval_huatuo26m": "Huatuo-26M test (paper Table 6 shape): greedy generation; BLEU-1..4 (nmt), GLEU (nltk), "
                      "ROUGE (nmt) on characters; Distinct-n per output, averaged",
    "eval_rag": "Retrieval-augmented answering: our BM25 (jieba) retriever; the paper's retriever is unpublished",
    "eval_voc": "Verification-of-Choice, OUR interpretation (AntGLM-Med's prompt is unpublished): each option "
                "verified in turn, best verification score wins",
    "eval_pubmedqa": "PubMedQA reasoning-required (yes/no/maybe): accuracy; macro_f1 = PubMedQA's evaluation.py "
                     "(sklearn macro over the labels present, an unparsed answer being one extra label with F1 0); "
                     "macro_f1_fixed_labels = macro over exactly yes/no/maybe",
    "eval_heldout": "Held-out perplexity on unseen wordings (over the stated facts and whole statements) and "
                    "the model's preference for the chosen answer on held-out DPO pairs (Wilson interval; "
                    "perplexities and the margin have no interval yet: per-statement losses are not kept)",
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
    """Every table as CSV (values and `ci95_lo` / `ci95_hi` columns) and Markdown / LaTeX (`v [lo, hi]`)."""
    out = {}
    for name, df in eval_tables(profile).items():
        out[name] = write_table(df, tables_dir(profile), name, CAPTIONS[name] + INTERVAL_NOTE,
                                display=display_frame(df))
    return out
