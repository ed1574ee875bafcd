"""DCPT: domain continued pre-training, the first Qilin-Med stage (notebook 02).

    run = run_dcpt(load_config("tiny"))
    run.path        # a plain model dir (tokenizer included) that SFT starts from
    run.metrics     # what results/<profile>/train_dcpt.json holds

Next-token prediction with the transformers Trainer on the ChiMed-CPT corpus packed into blocks of
`dcpt.block_size` tokens (qilin_lib.data.packing). Full-parameter training by default, as in the paper;
with `dcpt.lora.enabled` (gpu-small: a 7B model on one GPU) the LoRA adapter is merged into the weights
before saving, so the next stage always receives a plain model directory.

Caching: the artifact key hashes the stage config, the model config and the hashes of the corpus and the
base model. Checkpoints go to the artifact's `.work` directory and an interrupted run resumes from the
newest complete one (optimizer, scheduler, RNG and data position included: the resumed run ends with the
weights an uninterrupted run would have had). The model is written into the artifact only after training
ends, through the cache's temporary directory, and the work directory is then deleted.

Tiny profile sanity checks in the metrics (the proper evaluation is notebook 05): perplexity of the data
stage's held-out probe statements, taught vs control diseases, before and after DCPT; and how many times
the trained tokens restated each taught fact.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..cache import hash_obj
from ..config import ProfileConfig
from ..data import packing
from ..logprobs import _fact_span, perplexity, probe_perplexity  # noqa: F401 (re-exported)
from .common import (
    NonFiniteGuard,
    StageRun,
    base_model_dir,
    datasets_progress,
    model_hash,
    open_artifact,
    publish,
    setup,
    train,
    training_kwargs,
    work_dir,
)

log = logging.getLogger(__name__)

STAGE = "dcpt"


# ------------------------------------------------------------------------------------------ inputs
def default_data(cfg: ProfileConfig):
    """The data stage's complete artifact (its CPT corpus is DCPT's default input)."""
    from ..data.stage import data_artifact

    art = data_artifact(cfg)
    if not art.complete:
        raise FileNotFoundError(f"no complete data artifact for profile {cfg.name!r} at {art.path}: "
                                "run notebook 01 (or `qilin reproduce --only 01`) first")
    return art


def corpus_hash(cfg: ProfileConfig, corpus=None) -> str:
    """The data stage's output hash for the default corpus; else a hash of what was passed."""
    from datasets import Dataset

    if corpus is None:
        return default_data(cfg).manifest["output_hash"]
    if isinstance(corpus, Dataset):
        return corpus._fingerprint
    return hash_obj([str(t) for t in corpus])


def _texts(corpus):
    return corpus.select_columns([packing.TEXT]) if hasattr(corpus, "select_columns") else corpus


# ----------------------------------------------------------------------------------- sanity checks


def exposures_per_fact(data_dir: str | Path, texts, epochs: float) -> dict | None:
    """Tiny profile: how often the trained texts (a Dataset with `text`, or strings) restate each taught
    fact, per epoch and in total (counted in the deduplicated corpus, by the data stage's own counter).
    None for other profiles (their corpus is never read here)."""
    from ..data.tiny import count_exposures  # the counter notebook 01 reports

    stats = json.loads((Path(data_dir) / "data_stats.json").read_text("utf-8"))
    groups = stats.get("tiny", {}).get("groups")
    if not groups:
        return None
    column = texts[packing.TEXT] if hasattr(texts, "column_names") else texts
    per_epoch = count_exposures([{"text": t} for t in column], groups.get("dcpt", []) + groups.get("sft", []))
    return {"per_epoch": per_epoch, "epochs": round(epochs, 3),
            "total_min": round(per_epoch["min"] * epochs, 1), "total_mean": round(per_epoch["mean"] * epochs, 1)}


# ------------------------------------------------------------------------------------------- stage
def run_dcpt(cfg: ProfileConfig, *, corpus=None, base_model=None, force: bool = False, progress: bool = True,
             callbacks: list | None = None, reuse_only: bool = False) -> StageRun:
    """Continue pre-training the base model on the packed CPT corpus; return the stage's model dir.

    corpus: a datasets.Dataset with a `text` column or a list of strings (default: ChiMed-CPT from the
    data stage). base_model: a model dir or hub id (default: base_model_dir(cfg)). callbacks: extra
    TrainerCallbacks (the tests interrupt a run with one). reuse_only: raise StageNotTrained instead of
    training when no complete artifact exists (how evaluation finds the stages that were run)."""
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator, set_seed

    from ..modeling import count_parameters, load_model_and_tokenizer, lora_config

    # ---------------------------------------------------------------- setup: inputs, artifact, reuse
    sc = setup(cfg, STAGE, reuse_only=reuse_only)
    base = str(base_model if base_model is not None else base_model_dir(cfg))
    # Resolved once: the data artifact's key follows the generator code, which may change mid-run.
    data_dir = default_data(cfg).path if corpus is None else None
    data_hash = corpus_hash(cfg, corpus)
    art, reused = open_artifact(cfg, STAGE, {"data": data_hash, "base": model_hash(base)}, force=force,
                                reuse_only=reuse_only)
    if reused:
        return reused
    work = work_dir(art)

    # ---------------------------------------------------------------- model (+ LoRA)
    set_seed(cfg.seed)  # LoRA init; the Trainer reseeds (args.seed) before training
    model, tokenizer = load_model_and_tokenizer(cfg.model, base)
    model.config.use_cache = False
    max_len = getattr(model.config, "max_position_embeddings", None)
    if max_len and sc.block_size > max_len:
        raise ValueError(f"dcpt.block_size {sc.block_size} exceeds the model's max_position_embeddings {max_len}")
    if sc.lora.enabled:
        if sc.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed blocks need inputs that require grad
        model = get_peft_model(model, lora_config(sc.lora))
    trainable, total = count_parameters(model)

    args = TrainingArguments(**training_kwargs(cfg, STAGE, work, progress), include_num_input_tokens_seen="all")

    # ---------------------------------------------------------------- data: tokenize + pack (streams)
    if corpus is None:
        from datasets import load_from_disk
        texts = load_from_disk(str(data_dir / "chimed_cpt"))
    else:
        texts = packing.as_dataset(corpus)
    with args.main_process_first(desc="pack DCPT corpus"), datasets_progress(progress):
        # None: in this process; never more workers than CPUs (paper-smoke inherits paper's 8 on 2 cores)
        num_proc = min(cfg.data.num_proc, os.cpu_count() or 1)
        num_proc = num_proc if num_proc > 1 else None
        tokenized = packing.tokenize_documents(_texts(texts), tokenizer, cache_dir=work / "data",
                                               num_proc=num_proc)
        packed = packing.pack_tokenized(tokenized, sc.block_size, cache_dir=work / "data", num_proc=num_proc)
        stats = packing.packing_stats(tokenized, packed, sc.block_size, sc.per_device_batch_size, seed=cfg.seed)
    if len(packed) == 0:
        raise ValueError(f"the DCPT corpus holds fewer than block_size={sc.block_size} tokens")
    log.info("packed %d documents (%d tokens) into %d blocks of %d; real tokens %.4f, coverage %.4f",
             stats["documents"], stats["corpus_tokens"], stats["blocks"], sc.block_size,
             stats["packing_efficiency"], stats["token_coverage"])

    probe_before = probe_perplexity(data_dir, model, tokenizer) if data_dir else None

    # ---------------------------------------------------------------- train (resume when interrupted)
    trainer = Trainer(model=model, args=args, train_dataset=packed, data_collator=default_data_collator,
                      processing_class=tokenizer, callbacks=[NonFiniteGuard(STAGE), *(callbacks or [])])
    trained = train(trainer, art, STAGE)
    tokens_now = int(trainer.state.num_input_tokens_seen) - trained.tokens_before

    # ---------------------------------------------------------------- save: merged plain model + metrics
    final = trainer.model
    if sc.lora.enabled:
        final = final.merge_and_unload()  # the next stage gets a plain model dir
    final.config.use_cache = True
    probe_after = probe_perplexity(data_dir, final, tokenizer) if data_dir else None
    seconds = trained.seconds
    extra = {
        "tokens_trained": int(trainer.state.num_input_tokens_seen), "tokens_this_run": tokens_now,
        "train_seconds_this_run": round(seconds, 2),
        "tokens_per_second": round(tokens_now / seconds, 1) if seconds > 0 else None,
        "resumed_from": trained.resumed_from,
        "epochs_trained": round(float(trainer.state.epoch or 0.0), 3),
        "packing": stats, "packing_efficiency": stats["packing_efficiency"],
        "trainable_parameters": trainable, "total_parameters": total, "lora": sc.lora.enabled,
        "data_hash": data_hash, "base_model": base, "base_model_hash": art.inputs["base"],
        "block_size": sc.block_size,
    }
    if probe_before is not None:
        extra["probe_perplexity"] = {"before": probe_before, "after": probe_after}
    if data_dir and (exposures := exposures_per_fact(data_dir, texts, extra["epochs_trained"])):
        extra["exposures_per_fact"] = exposures

    def save(out: Path) -> None:
        final.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return publish(cfg, STAGE, art, trainer, extra, save=save,
                   manifest={"tokens_trained": extra["tokens_trained"]})
