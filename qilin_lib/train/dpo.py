"""Stage 3 of Qilin-Med: DPO with LoRA on the merged SFT model (notebook 04).

    run = run_dpo(load_config("tiny"))      # default: run_sft(cfg) (cached) and the data stage's ChiMed-DPO
    run.path                                # merged DPO model (model + tokenizer); run.path / "adapter": LoRA
    run.metrics["heldout"]["before"|"after"]

Recipe (the authors' run_dpo.sh): the SFT adapter is merged into the CPT model first (the SFT artifact holds
that merged model: `run_sft(...).path`), then a new LoRA adapter (r 8, alpha 16, dropout 0.05) is trained
with the DPO loss, beta 0.1, on that merged model.

Reference model. TRL 1.16 `DPOTrainer(model, ref_model=None, peft_config=...)` wraps the plain merged model
with the new adapter and computes the reference log-probs of every batch with the adapter disabled
(`use_adapter(model, None)` -> `disable_adapter()`), so the reference is exactly the merged SFT model and no
second copy is held in memory. (A model passed already wrapped as a PeftModel would instead get a frozen
"ref" copy of its adapter; `run_dpo` checks that this did not happen.) TRL's default `disable_dropout=True`
is kept: with dropout on, policy and reference would differ at step 0 and the implicit rewards be noisy;
the LoRA dropout of the profile is therefore inactive in this stage, as in TRL's own DPO runs.

Lengths. TRL 1.16 dropped `max_prompt_length` / `max_completion_length` (only `max_length` is left), so the
paper's 256/256 are applied here when the pairs are tokenised, with the same chat template and the same
rule as SFT (qilin_lib.train.sft; the profile's `model.chat_template`, source and target encoded apart
under an explicit one): prompt = the rendered user turn and the answer header, at most max_source_length
tokens; chosen / rejected = the answer and its end-of-turn token, at most max_target_length tokens (SFT's
stop-token check runs first, and `model.chat_template_kwargs` reach every render). The
trainer takes these token ids as they are (`_PreTokenized` below). (The authors' dpo_training.py wrapped
prompts as "Question: {q}\n\nAnswer: " instead; the SFT template is kept here so that DPO trains the format
the SFT model answers in.)

Measured (results/<profile>/train_dpo.json): TRL's `rewards/margins` and `rewards/accuracies` per logging
step, and on the held-out pairs (eval/dpo_heldout: other diseases, other prompt wordings) and on the
training pairs, before and after DPO:
    logp_accuracy / logp_margin      P(log pi(chosen) > log pi(rejected)) and mean difference (summed over
                                     answer tokens; `_per_token` versions divide by the answer length)
    reward_accuracy / reward_margin  the DPO implicit reward r = beta * (log pi - log pi_ref): share of pairs
                                     with r(chosen) > r(rejected), mean r(chosen) - r(rejected). Before DPO
                                     the policy *is* the reference, so both are 0 by construction.
and, as SFT does, the probe perplexities of DCPT's sanity check (qilin_lib.logprobs.probe_perplexity)
before and after.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import ProfileConfig
from ..logprobs import (  # noqa: F401 (re-exported)
    PAIR_COLUMNS,
    _prompt_messages,
    _sequence_logps,
    _split,
    ensure_chat_template,
    preference_metrics,
    probe_perplexity,
    tokenize_dpo_dataset,
    tokenize_preference,
)
from ..modeling import count_parameters, lora_config, merge_adapter
from .common import (
    NonFiniteGuard,
    StageRun,
    datasets_progress,
    model_hash,
    open_artifact,
    probe_data_dir,
    publish,
    setup,
    stage_dataset,
    train,
    training_kwargs,
    work_dir,
)
from .sft import ADAPTER_DIR, load_chat_model, run_sft

STAGE = "dpo"
# before/after preference metrics: held-out pairs up to this many, training pairs a seeded sample of this many
MAX_EVAL_PAIRS = {"heldout": 1000, "train_pairs": 100}


# ================================================================================= tokenisation


def _pretokenized_trainer():
    from trl import DPOTrainer

    class PreTokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer that takes prompt_ids / chosen_ids / rejected_ids as they are (the limits above)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if set(PAIR_COLUMNS) <= set(dataset.column_names):
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return PreTokenizedDPOTrainer


# ================================================================================ measurements


def _heldout(cfg: ProfileConfig):
    from ..data.stage import load_corpus

    try:
        return load_corpus(cfg, "eval/dpo_heldout")
    except FileNotFoundError:
        return None


def _eval_sample(ds, n: int, seed: int):
    return ds if len(ds) <= n else ds.shuffle(seed=seed).select(range(n))


def _series(history: list[dict], key: str) -> list[list]:
    return [[h["step"], round(h[key], 5)] for h in history if key in h]


# ========================================================================================= stage
def run_dpo(cfg: ProfileConfig, *, dataset=None, sft_run: StageRun | None = None, force: bool = False,
            progress: bool = True, heldout=None, callbacks: list | None = None, reuse_only: bool = False) -> StageRun:
    """LoRA DPO on the merged SFT model; reuses a complete artifact unless `force`, resumes from checkpoints.

    dataset: ChiMed-DPO records (default: the data stage's `dpo` corpus); sft_run: the SFT stage's result
    (default: run_dcpt -> run_sft, both cached); heldout: preference records scored before/after (default:
    eval/dpo_heldout when the data stage has it); callbacks: extra transformers TrainerCallbacks."""
    from trl import DPOConfig

    # ------------------------------------------------------------------------------ setup: inputs, artifact, reuse
    dc = setup(cfg, STAGE, reuse_only=reuse_only, lora_recipe="DPO")
    if sft_run is None:
        sft_run = run_sft(cfg, progress=progress, reuse_only=reuse_only)
    sft_dir = Path(sft_run.path)
    dataset, data_id = stage_dataset(cfg, "dpo", dataset)
    art, reused = open_artifact(cfg, STAGE, {"data": data_id, "sft_model": model_hash(sft_dir)}, force=force,
                                reuse_only=reuse_only)
    if reused:
        return reused

    # ------------------------------------------------------------------------------ model + data
    model, tokenizer, template = load_chat_model(cfg, sft_dir)
    heldout = _heldout(cfg) if heldout is None else heldout
    with datasets_progress(progress):
        train_ds = tokenize_dpo_dataset(tokenizer, dataset, dc.max_source_length, dc.max_target_length, **template)
        heldout_ds = (tokenize_dpo_dataset(tokenizer, heldout, dc.max_source_length, dc.max_target_length, **template)
                      if heldout is not None and len(heldout) else None)

    # ------------------------------------------------------------------------------ train
    args = DPOConfig(**training_kwargs(cfg, STAGE, work_dir(art), progress), beta=dc.beta, max_length=None,
                     include_num_input_tokens_seen="non_padding")
    trainer = _pretokenized_trainer()(model=model, ref_model=None, args=args, train_dataset=train_ds,
                                      processing_class=tokenizer, peft_config=lora_config(dc.lora),
                                      callbacks=[NonFiniteGuard(STAGE), *(callbacks or [])])
    if trainer.ref_model is not None or "ref" in trainer.model.peft_config:
        raise RuntimeError("DPO reference is not the merged SFT model with the adapter disabled")
    eval_sets = {"train_pairs": train_ds} | ({"heldout": heldout_ds} if heldout_ds is not None else {})
    eval_sets = {name: _eval_sample(ds, MAX_EVAL_PAIRS[name], cfg.seed) for name, ds in eval_sets.items()}
    fresh = all(not p.any() for n, p in trainer.model.named_parameters() if "lora_B" in n)  # policy == reference
    before = {name: preference_metrics(trainer.model, tokenizer, ds, dc.beta, policy_is_reference=fresh)
              for name, ds in eval_sets.items()}
    probe_data = probe_data_dir(cfg)
    probe_before = probe_perplexity(probe_data, trainer.model, tokenizer) if probe_data else None
    trained = train(trainer, art, STAGE)

    # ------------------------------------------------------------------------------ measure + save
    after = {name: preference_metrics(trainer.model, tokenizer, ds, dc.beta) for name, ds in eval_sets.items()}
    probe_after = probe_perplexity(probe_data, trainer.model, tokenizer) if probe_before is not None else None
    history = trainer.state.log_history
    trainable, total = count_parameters(trainer.model)
    margins, accuracies = _series(history, "rewards/margins"), _series(history, "rewards/accuracies")
    extra = {
        "trainer": "trl.DPOTrainer (pre-tokenized pairs; reference = merged SFT model, adapter disabled)",
        "beta": dc.beta, "trainable_params": trainable, "total_params": total,
        "trainable_fraction": round(trainable / total, 6), "train_pairs": len(train_ds),
        "rewards/margins": margins, "rewards/accuracies": accuracies,
        "rewards/chosen": _series(history, "rewards/chosen"), "rewards/rejected": _series(history, "rewards/rejected"),
        "final_rewards/margins": margins[-1][1] if margins else None,
        "final_rewards/accuracies": accuracies[-1][1] if accuracies else None,
        "train_pairs_eval": {"before": before["train_pairs"], "after": after["train_pairs"]},
        "heldout": ({"before": before["heldout"], "after": after["heldout"]} if heldout_ds is not None else None),
        "probe_perplexity": {"before": probe_before, "after": probe_after} if probe_before else None,
        **trained.throughput(), "wall_s": round(trained.seconds, 2), "resumed_from": trained.resumed_from,
        "lora": dataclasses.asdict(dc.lora), "max_source_length": dc.max_source_length,
        "max_target_length": dc.max_target_length,
        "sft_model": str(sft_dir), "hashes": {"data": data_id, "sft_model": art.inputs["sft_model"]},
    }

    def save(out: Path) -> None:
        trainer.save_model(str(out / ADAPTER_DIR))
        merge_adapter(sft_dir, out / ADAPTER_DIR, out, model_cfg=cfg.model)

    return publish(cfg, STAGE, art, trainer, extra, save=save, manifest={"sft_model": str(sft_dir)})


# ========================================================================================= figure
def plot_summary(metrics: dict, profile: str) -> Path:
    """figures/<profile>/dpo_summary.png: TRL's reward margins/accuracies per logging step, and the
    chosen-vs-rejected preference on held-out and training pairs before/after DPO."""
    from .. import plots
    from ..paths import figures_dir

    plots.plt.rcParams.update(plots.STYLE)
    fig, (ax1, ax2) = plots.plt.subplots(1, 2, figsize=(10, 3.4))
    for key, color in (("rewards/margins", plots.PALETTE[0]), ("rewards/accuracies", plots.PALETTE[3])):
        if metrics.get(key):
            ax1.plot(*zip(*metrics[key]), color=color, label=key)
    ax1.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax1.set(xlabel="optimizer step", title=f"DPO training rewards ({profile}, beta {metrics.get('beta')})")
    ax1.legend()
    sets = {"train pairs": metrics.get("train_pairs_eval")}
    if metrics.get("heldout"):
        sets["held-out pairs"] = metrics["heldout"]
    labels, before, after = [], [], []
    for name, ev in sets.items():
        for key in ("logp_accuracy", "logp_per_token_accuracy"):
            labels.append(f"{name}\n{'summed' if key == 'logp_accuracy' else 'per token'}")
            before.append(ev["before"][key])
            after.append(ev["after"][key])
    x = range(len(labels))
    ax2.bar([i - 0.19 for i in x], before, 0.38, color=plots.PALETTE[1], label="before DPO (SFT model)")
    ax2.bar([i + 0.19 for i in x], after, 0.38, color=plots.PALETTE[2], label="after DPO")
    ax2.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax2.set_xticks(list(x), labels, fontsize=7)
    ax2.set(ylim=(0, 1.2), yticks=[0, 0.25, 0.5, 0.75, 1.0], ylabel="P(log p(chosen) > log p(rejected))",
            title="chosen vs rejected")
    ax2.legend(fontsize=7, loc="upper center", ncol=2)
    return plots.save(fig, figures_dir(profile), "dpo_summary")
