"""Notebook 05's engine: every trained stage on every benchmark, in every scoring mode.

    models = stage_models(cfg)                    # base, dcpt, sft, dpo: those whose artifacts exist
    result, = evaluate_model(cfg, models[2], ["cmexam"])
    result["metrics"]["loglik"]["accuracy"]

Each (model, task) writes `results/<profile>/eval_<model>_<task>.json` (metrics, protocol, provenance)
and `results/<profile>/predictions/<model>_<task>.jsonl` (one row per item and mode: the output or the
option scores, and the prediction). Tasks:

    <benchmark>          the benchmark in the profile's modes (generate / loglik / cloze for MCQ sets,
                         greedy generation for Huatuo-26M)
    <benchmark>_rag      the same with BM25 passages prepended (qilin_lib.evaluation.rag)
    <benchmark>_voc      Verification-of-Choice against direct answering (qilin_lib.evaluation.voc)
    <benchmark>_prior    tiny profile: cloze on the question with the disease name removed (what the
                         options' wording alone gives away)
    <benchmark>_recall   tiny profile, diagnostic: cloze on the question in a training wording (what the
                         model recalls when it need not transfer the fact to an unseen wording)
    heldout              tiny profile: held-out perplexity on unseen wordings (taught vs control
                         diseases) and chosen-vs-rejected preference on held-out DPO pairs

A metric is reported overall and, where items carry a `group` (tiny: taught / control), per group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..cache import atomic_write_json, atomic_write_text
from ..paths import results_dir
from ..reporting import provenance
from . import multiple_choice as mc
from .benchmarks import Benchmark, load_benchmark
from .results import STAGE_ORDER, load_results
from .scoring import Scorer
from .voc import VOC_PROMPT, voc

# Every model the repo trains, with whether its prompts go through the chat template; an external model
# (`qilin evaluate --model`) may not take one of these names.
STAGE_CHAT = {"base": False, "dcpt": False, "sft": True, "dpo": True, "adapt": True}


@dataclass
class EvalModel:
    name: str          # base / dcpt / sft / dpo / adapt, or an external model's label
    path: str
    chat: bool         # instruction-tuned: prompts go through the chat template


# --------------------------------------------------------------------------------------- models
def trained_stage(cfg, stage: str) -> EvalModel | None:
    """A training stage's model as results/<profile>/train_<stage>.json records it (its artifact key, in
    `provenance`; the artifact is artifacts/<profile>/<stage>-<key>), None when the record or a complete
    artifact is missing. Evaluation never imports training: the record is the interface. The artifact's
    weights are not re-hashed here (that reads every weight file); `model_hash` of the artifact, written
    beside every result, is the hash of its manifest's file hashes, so a replaced model shows there."""
    from ..paths import artifacts_dir

    record = Path(results_dir(cfg.name)) / f"train_{stage}.json"
    if not record.exists():
        return None
    key = json.loads(record.read_text("utf-8")).get("provenance", {}).get("artifact_key")
    if not key:
        raise ValueError(f"{record}: no provenance.artifact_key; retrain {stage} (`qilin train {stage}`)")
    path = Path(artifacts_dir(cfg.name)) / f"{stage}-{key}"
    try:
        complete = json.loads((path / "manifest.json").read_text("utf-8")).get("complete") is True
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        complete = False
    return EvalModel(stage, str(path), STAGE_CHAT[stage]) if complete else None


def stage_models(cfg, progress: bool = False) -> list[EvalModel]:
    """The base model and every training stage whose record and artifact exist, in pipeline order; nothing
    is trained here (a missing stage ends the list)."""
    from ..model_source import base_model_dir

    models = [EvalModel("base", str(base_model_dir(cfg)), chat=False)]
    for name in STAGE_ORDER[1:]:
        if (model := trained_stage(cfg, name)) is None:
            break
        models.append(model)
    return models


def scorer_for(cfg, model: EvalModel, progress: bool = True) -> Scorer:
    """The in-process Scorer, or with `evaluation.backend: openai` the ServedScorer that sends the same
    requests to the server at `evaluation.base_url` (the model's directory still gives the tokenizer)."""
    ec = cfg.evaluation
    if ec.backend == "openai":
        from .served import ServedScorer

        return ServedScorer.load(cfg, model.path, chat=model.chat, progress=progress, max_length=ec.max_length)
    return Scorer.load(cfg, model.path, chat=model.chat, batch_size=ec.batch_size, progress=progress,
                       max_length=ec.max_length)


def _logprobs(scorer: Scorer) -> bool:
    """Whether the scorer can score given tokens (loglik, cloze, VoC): a served engine without prompt
    log-probabilities (`transformers serve`) can only generate."""
    return getattr(scorer, "supports_logprobs", True) is not False


# ---------------------------------------------------------------------------------------- tasks
def run_mcq(scorer: Scorer, bench: Benchmark, modes, max_new_tokens: int, prompt=None) -> tuple[dict, dict]:
    """{mode: metrics}, {mode: prediction rows} for the profile's scoring modes; `prompt` replaces the
    benchmark's prompt (RAG), and then cloze, which reads the question alone, is skipped."""
    with_cloze = prompt is None
    prompt = prompt or bench.prompt
    metrics, preds = {}, {}
    if "generate" in modes:
        parsers = bench.parser_functions()
        rows = mc.generate(scorer, bench.items, prompt, parsers, max_new_tokens, with_loglik="loglik" in modes)
        if "loglik" in modes:  # read from the generation pass's first step
            rows, preds["loglik"] = rows
        metrics["generate"] = {name: bench.score([r | {"pred": r["preds"][name]} for r in rows], scorer.intervals)
                               for name in parsers}
        metrics |= bench.generation_metrics(rows, scorer.intervals)
        preds["generate"] = rows
    if "loglik" in modes:
        if "loglik" not in preds:
            preds["loglik"] = mc.loglik(scorer, bench.items, prompt)
        metrics["loglik"] = bench.score(preds["loglik"], scorer.intervals)
    if "cloze" in modes and with_cloze:
        for variant, rows in mc.cloze(scorer, bench.items, question=bench.stem).items():
            preds[variant], metrics[variant] = rows, bench.score(rows, scorer.intervals)
    return metrics, _tag_groups(bench.items, preds)


def _tag_groups(items: list[dict], preds: dict) -> dict:
    """Each prediction row gets its item's `group` (tiny: taught / control), so that the knowledge tables'
    paired differences can be computed from the predictions files alone."""
    for rows in preds.values():
        for it, row in zip(items, rows):
            if it.get("group"):
                row["group"] = it["group"]
    return preds


def run_qa(scorer: Scorer, bench: Benchmark, max_new_tokens: int, prompt=None) -> tuple[dict, dict]:
    prompt = prompt or bench.prompt
    outputs = scorer.generate([scorer.context(prompt(it)) for it in bench.items], max_new_tokens, desc="QA")
    rows = [{"id": it["id"], "output": out, "reference": it["answer"]} for it, out in zip(bench.items, outputs)]
    return {"generate": bench.score(rows, scorer.intervals)}, {"generate": rows}


def run_voc(scorer: Scorer, bench: Benchmark) -> tuple[dict, dict]:
    rows = voc(scorer, bench.items, question=bench.stem)
    return {"voc": bench.score(rows, scorer.intervals, breakdown=False)}, {"voc": rows}


QUESTION_VARIANTS = {
    "prior": "question_prior",    # the disease name removed: what the options' wording alone gives away
    "recall": "question_recall",  # a training wording of the question: recall without transfer (diagnostic)
}


def run_variant(scorer: Scorer, bench: Benchmark, variant: str) -> tuple[dict, dict]:
    """Tiny profile: cloze on a variant of each question (QUESTION_VARIANTS)."""
    key = QUESTION_VARIANTS[variant]
    metrics, preds = {}, {}
    for mode, rows in mc.cloze(scorer, bench.items, question=lambda it: it[key]).items():
        preds[mode], metrics[mode] = rows, bench.score(rows, scorer.intervals, breakdown=False)
    return metrics, _tag_groups(bench.items, preds)


def rag_prompt_fn(cfg, bench: Benchmark):
    """bench.prompt with the top-k BM25 passages for the item's question in front (and the passages used)."""
    from .rag import knowledge_retriever, rag_prompt

    retriever = knowledge_retriever(cfg)
    ec = cfg.evaluation
    retrieved: dict[str, list] = {}

    def prompt(item: dict) -> str:
        hits = retriever.search(bench.query(item), ec.rag_top_k)
        retrieved[item["id"]] = [[p[:ec.rag_max_chars], s] for p, s in hits]
        return rag_prompt(bench.prompt(item), [p for p, _ in hits], ec.rag_max_chars)
    return prompt, retrieved


def run_heldout(cfg, scorer: Scorer) -> tuple[dict, dict]:
    """Tiny profile: probe perplexity (taught vs control, unseen wordings) and the model's own preference
    for the chosen answer on held-out DPO pairs (log-prob accuracy and margin; no reference model)."""
    from ..data.stage import data_artifact, load_corpus
    from ..logprobs import (
        ensure_chat_template,
        preference_metrics,
        probe_perplexity,
        tokenize_dpo_dataset,
    )

    metrics: dict = {"probe_perplexity": probe_perplexity(data_artifact(cfg).path, scorer.model, scorer.tokenizer)}
    pairs = load_corpus(cfg, "eval/dpo_heldout")
    tok = ensure_chat_template(scorer.tokenizer)
    ds = tokenize_dpo_dataset(tok, pairs, cfg.dpo.max_source_length, cfg.dpo.max_target_length)
    pref = preference_metrics(scorer.model, tok, ds, cfg.dpo.beta, policy_is_reference=True)
    metrics["dpo_heldout"] = {k: v for k, v in pref.items() if k.startswith("logp") or k == "pairs"}
    return metrics, {}


# ----------------------------------------------------------------------------------------- write
def write_result(cfg, model: EvalModel, task: str, bench: Benchmark | None, metrics: dict, preds: dict,
                 protocol: dict, extra: dict | None = None) -> dict:
    """results/<profile>/eval_<model>_<task>.json and predictions/<model>_<task>.jsonl."""
    from ..model_source import model_hash

    out_dir = results_dir(cfg.name)
    result = {"model": model.name, "task": task, "benchmark": bench.name if bench else None,
              "profile": cfg.name, "n_items": len(bench) if bench else None, "chat_template": model.chat,
              "protocol": protocol, "metrics": metrics, "model_hash": model_hash(model.path), **(extra or {}),
              "provenance": provenance()}
    atomic_write_json(out_dir / f"eval_{model.name}_{task}.json", result)
    if preds:
        lines = [json.dumps({"mode": mode, **row}, ensure_ascii=False) for mode, rows in preds.items() for row in rows]
        atomic_write_text(out_dir / "predictions" / f"{model.name}_{task}.jsonl", "\n".join(lines) + "\n")
    return result


def protocol_of(bench: Benchmark, modes, scorer: Scorer, extra: dict | None = None) -> dict:
    """What produced a number, stored beside it: modes, parsers, prompt template, window, chat wrapping."""
    example = bench.prompt(bench.items[0]) if bench.items else ""
    return {"modes": list(modes), "parsers": list(bench.parsers), "prompt_example": example,
            "n_options": max((len(it.get("options") or {}) for it in bench.items), default=0),
            "chat_template": scorer.chat, "max_length": scorer.max_length,
            "truncated_prompts": scorer.truncated, "intervals": scorer.intervals.protocol(),
            **(scorer.protocol() if hasattr(scorer, "protocol") else {}), **(extra or {})}


def evaluate_model(cfg, model: EvalModel, benchmarks: list[str | Benchmark], progress: bool = True,
                   rag: bool = False, voc: bool = False, prior: bool = False, heldout: bool = False) -> list[dict]:
    """Every requested task for one model (benchmarks by name, or already loaded); returns the result dicts
    written."""
    ec = cfg.evaluation
    scorer = scorer_for(cfg, model, progress)
    results = []
    for bench in benchmarks:
        bench = bench if isinstance(bench, Benchmark) else load_benchmark(cfg, bench, ec.max_items)
        name = bench.name
        runs = [(name, None)]
        if rag and name in ec.rag_benchmarks:
            runs.append((f"{name}_rag", rag_prompt_fn(cfg, bench)))
        for task, rag_fn in runs:
            scorer.truncated = 0
            prompt, retrieved = rag_fn if rag_fn else (None, None)
            if bench.kind == "qa":
                metrics, preds = run_qa(scorer, bench, ec.max_new_tokens_qa, prompt)
                modes = ["generate"]
            else:
                modes = ec.modes if rag_fn is None else [m for m in ec.modes if m != "cloze"]
                if not _logprobs(scorer):  # said in the protocol, never dropped silently
                    skipped = [m for m in modes if m != "generate"]
                    modes = [m for m in modes if m == "generate"]
                metrics, preds = run_mcq(scorer, bench, modes, ec.max_new_tokens_mcq, prompt)
            if retrieved is not None:
                for rows in preds.values():
                    for row in rows:
                        row["retrieved"] = retrieved.get(row["id"], [])
            extra = {"rag": {"top_k": ec.rag_top_k, "max_chars": ec.rag_max_chars}} if rag_fn else {}
            if not _logprobs(scorer) and bench.kind != "qa":
                why = "the served engine returns no prompt log-probabilities"
                extra["skipped_modes"] = {m: why for m in skipped + ["voc"] * voc + ["prior", "recall"] * prior}
            results.append(write_result(cfg, model, task, bench, metrics, preds,
                                        protocol_of(bench, modes, scorer, extra)))
        if (voc or prior) and bench.kind == "mcq" and not _logprobs(scorer):
            print(f"[eval] {model.name} {name}: VoC and the prior/recall variants skipped: the served engine "
                  "returns no prompt log-probabilities", flush=True)
            continue
        if voc and bench.kind == "mcq":
            scorer.truncated = 0
            metrics, preds = run_voc(scorer, bench)
            results.append(write_result(cfg, model, f"{name}_voc", bench, metrics, preds,
                                        protocol_of(bench, ["voc"], scorer, {"voc_prompt": VOC_PROMPT})))
        for variant, key in QUESTION_VARIANTS.items():
            if prior and bench.kind == "mcq" and bench.items and key in bench.items[0]:
                metrics, preds = run_variant(scorer, bench, variant)
                results.append(write_result(cfg, model, f"{name}_{variant}", bench, metrics, preds,
                                            protocol_of(bench, list(mc.CLOZE_VARIANTS), scorer, {"question": key})))
    if heldout and scorer.model is None:
        print(f"[eval] {model.name} heldout: skipped (needs the model in-process; backend {ec.backend})", flush=True)
    elif heldout:
        metrics, _ = run_heldout(cfg, scorer)
        results.append(write_result(cfg, model, "heldout", None, metrics, {}, {"what": run_heldout.__doc__}))
    return results


# ------------------------------------------------------------------------------------ everything
def evaluate_all(cfg, progress: bool = True) -> list[dict]:
    """Notebook 05: every existing stage on the profile's benchmarks (+ RAG, VoC, the tiny baselines),
    then the task-adapted model on its benchmark when that stage has been trained (train/adapt.py; notebook
    05 and `qilin evaluate` train it first). Nothing is trained here. Result files of an earlier run that
    this run did not write (a stage or benchmark since removed) are deleted at the end, so results/ holds
    one run only; the profile's `external_models` are scored last, and external labels' results (also
    written by `qilin evaluate --model`) are never deleted here."""
    from .benchmarks import available

    ec = cfg.evaluation
    tiny = cfg.data.generator == "tiny_kb"
    names = [b for b in ec.benchmarks if b in available(cfg)]
    benches = [load_benchmark(cfg, name, ec.max_items) for name in names]  # loaded once for every model
    models = stage_models(cfg, progress=False)
    results = []
    for model in models:
        print(f"[eval] {model.name}: {', '.join(names)}", flush=True)
        results += evaluate_model(cfg, model, benches, progress, rag=model.name in ec.rag_models,
                                  voc=model.name in ec.voc_models, prior=tiny and ec.prior_baseline, heldout=tiny)
    if ec.adapt_benchmark and any(m.name == "sft" for m in models):
        if (adapted := adapted_model(cfg)) is None:
            print("[eval] adapt: not trained (qilin train adapt), not evaluated", flush=True)
        else:
            print(f"[eval] adapt: {ec.adapt_benchmark}", flush=True)
            results += evaluate_model(cfg, adapted, [ec.adapt_benchmark], progress, voc="adapt" in ec.voc_models)
    if ec.external_models:
        from .external import evaluate_external, profile_external_models

        for model in profile_external_models(cfg):
            print(f"[eval] {model.name} (external): {', '.join(names)}", flush=True)
            results += evaluate_external(cfg, model, benches, progress)
    _remove_stale(cfg.name, {(r["model"], r["task"]) for r in results})
    return results


def adapted_model(cfg) -> EvalModel | None:
    """The task-adapted model (AntGLM-Med stage 3) when its record and artifact exist."""
    return trained_stage(cfg, "adapt")


def _remove_stale(profile: str, written: set[tuple[str, str]]) -> None:
    """Delete the stages' results this run did not write; an external model's results (written by
    `qilin evaluate --model`, or the profile's `evaluation.external_models`) are kept."""
    remove_results(profile, keep=written, models=set(STAGE_CHAT))


def remove_results(profile: str, keep: set[tuple[str, str]], models: set[str]) -> None:
    """Delete the result and prediction files of `models` whose (model, task) is not in `keep`."""
    out = Path(results_dir(profile))
    for r in load_results(profile):
        if r["model"] in models and (r["model"], r["task"]) not in keep:
            (out / f"eval_{r['model']}_{r['task']}.json").unlink(missing_ok=True)
            (out / "predictions" / f"{r['model']}_{r['task']}.jsonl").unlink(missing_ok=True)
