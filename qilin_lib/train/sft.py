"""Stage 2 of Qilin-Med: supervised fine-tuning with LoRA on the DCPT model (notebook 03).

    run = run_sft(load_config("tiny"))      # base: run_dcpt(cfg).path; data: the data stage's ChiMed-SFT
    run.path                                # merged SFT model (model + tokenizer); run.path / "adapter": LoRA
    run.metrics["probe_perplexity"]         # knowledge kept? held-out statements before/after SFT

Loss on responses only (the paper: "loss on responses only"), on every assistant turn of a multi-turn
conversation. Tokenisation follows the authors' code base (MedicalGPT supervised_finetuning.py, 2023), with
the chat template of the tokenizer instead of a hand-written prompt format. The profile's
`model.chat_template` picks it: `auto` keeps the tokenizer's own (rendered and tokenized as one string);
the paper profiles name the authors' `baichuan-chat`, whose sources and targets are then encoded one by
one as the authors' script does (`by_segment`, qilin_lib.chat_templates):

    for every (source, target) turn of a conversation:
        source = everything before an assistant message: role markers, the system message (first turn),
                 the user message and the header that opens the answer ("<|assistant|>\\n")
        target = the assistant message and its end-of-turn token (<|end|>: the model must learn to stop)
        source: at most max_source_length tokens; a longer one keeps its first tokens and its answer header
                (the authors keep only the first tokens: their prompt then loses its assistant marker)
        target: at most max_target_length tokens; a longer one keeps its first tokens and its end-of-turn
                token (with what a template puts after it inside the mask: Qwen's "\n")
        the turn is dropped, with all later ones, when it would take the sequence beyond
        max_source_length + max_target_length tokens (MedicalGPT's max_length)
    labels = -100 on sources, the token ids on targets

Before training, `check_stop_token_trained` refuses a template whose targets hold none of the tokens
generation stops on (qilin_lib.chat_templates.stop_token_ids): such a model never learns to end an answer.
`model.chat_template_kwargs` reach every render (Qwen3's `enable_thinking`).

Trainer: TRL's SFTTrainer on the pre-tokenized dataset. In TRL 1.16 a dataset that already holds
`input_ids` and `labels` is used as is (no re-tokenisation; `max_length=None` turns off its global
keep-start truncation, which could not express per-turn source/target limits anyway); its collator pads
labels with -100, its loss is the mean over label tokens of the whole optimizer batch (correct under
gradient accumulation), it wraps the model with the profile's LoRA config after seeding, and it logs token
accuracy; DPOTrainer shares its base class. A plain transformers Trainer would need the same collator and
LoRA plumbing written here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from ..chat_templates import stop_token_ids
from ..config import ProfileConfig
from ..logprobs import (  # the chat turns the SFT mask is cut from
    _cut_source,
    _cut_target,
    _generation_header,
    _turns,
    ensure_chat_template,
    probe_perplexity,
)
from ..modeling import (
    count_parameters,
    load_model_and_tokenizer,
    lora_config,
    merge_adapter,
)
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

STAGE = "sft"
IGNORE_INDEX = -100
ADAPTER_DIR = "adapter"


# ================================================================================= tokenisation


def tokenize_conversation(tokenizer, messages: Sequence[dict], max_source_length: int, max_target_length: int,
                          max_length: int | None = None, *, by_segment: bool = False,
                          template_kwargs: dict | None = None) -> dict[str, list[int]]:
    """input_ids / attention_mask / labels of one conversation (the rule in the module docstring).

    `max_length` defaults to max_source_length + max_target_length (MedicalGPT); 0 disables the cap;
    `template_kwargs`: extra chat-template variables (model.chat_template_kwargs)."""
    if max_source_length < 1 or max_target_length < 1:
        raise ValueError("max_source_length and max_target_length must be >= 1")
    kw = template_kwargs or {}
    cap = max_source_length + max_target_length if max_length is None else max_length
    header = _generation_header(tokenizer, **kw)
    ends = set(stop_token_ids(tokenizer, **kw))
    input_ids: list[int] = []
    labels: list[int] = []
    for source, target in _turns(tokenizer, messages, by_segment, **kw):
        source = _cut_source(source, max_source_length, header)
        target = _cut_target(target, max_target_length, ends)
        if cap and input_ids and len(input_ids) + len(source) + len(target) > cap:
            break
        input_ids += source + target
        labels += [IGNORE_INDEX] * len(source) + target
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def check_stop_token_trained(tokenizer, stop_ids: Sequence[int], template: str, *, by_segment: bool = False,
                             template_kwargs: dict | None = None) -> None:
    """Refuse a chat template whose answer targets hold none of `stop_ids` (the tokens generation stops on):
    the loss would look healthy and the model never learn to end an answer. Probed with the stage's own
    tokenisation; TRL's is_chat_template_stop_token_trained asks only that some added token end the mask,
    on whole-string tokenisation. A user turn follows the answer because some templates give the answer's
    end-of-turn token to the next message."""
    name = f"{template!r}" + (" (the tokenizer's own template)" if template == "auto" else "")
    probe = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"},
             {"role": "user", "content": "thanks"}]
    try:
        target = _turns(tokenizer, probe, by_segment, **(template_kwargs or {}))[0][1]
    except ValueError as err:
        raise ValueError(f"model.chat_template {name}: {err} around each answer and its end-of-turn token. TRL "
                         "has training variants of known families only (Qwen2.5, Qwen3, Llama-3, ...); for another "
                         "base set model.chat_template to a .jinja file with them") from err
    if not set(target) & set(stop_ids):
        stops = ", ".join(tokenizer.convert_ids_to_tokens(list(stop_ids)))
        raise ValueError(f"model.chat_template {name} does not train the stop token: generation stops on {stops}, "
                         f"but an answer's loss mask is {tokenizer.convert_ids_to_tokens(target)}, none of them; the "
                         "model would never learn to end its answer. Put the end-of-turn token inside "
                         "{% generation %} (a .jinja file as model.chat_template), or add the token that ends its "
                         "turns to the model's generation_config.eos_token_id")


def tokenize_sft_dataset(tokenizer, dataset, max_source_length: int, max_target_length: int, *,
                         by_segment: bool = False, template_kwargs: dict | None = None):
    """ChiMed-SFT records ({"messages", ...}) -> input_ids / attention_mask / labels; rows without a label
    token (no assistant turn) are dropped."""
    def fn(rec):
        return tokenize_conversation(tokenizer, rec["messages"], max_source_length, max_target_length,
                                     by_segment=by_segment, template_kwargs=template_kwargs)

    tokenized = dataset.map(fn, remove_columns=dataset.column_names, desc="tokenize SFT")
    return tokenized.filter(lambda r: any(t != IGNORE_INDEX for t in r["labels"]), desc="drop label-free rows")


# ================================================================================== chat model
def load_chat_model(cfg: ProfileConfig, model_dir: str | Path):
    """(model, tokenizer, template) of a chat stage (SFT, adapt, DPO): the model with the profile's chat
    template, refused when that template does not train the stop token (check_stop_token_trained); template:
    the keywords its tokenisation takes (by_segment, template_kwargs)."""
    model, tokenizer = load_model_and_tokenizer(cfg.model, str(model_dir))  # with the profile's chat template
    ensure_chat_template(tokenizer)
    by_segment, kw = cfg.model.chat_template != "auto", cfg.model.chat_template_kwargs
    check_stop_token_trained(tokenizer, stop_token_ids(tokenizer, model.generation_config.eos_token_id, **kw),
                             cfg.model.chat_template, by_segment=by_segment, template_kwargs=kw)
    return model, tokenizer, {"by_segment": by_segment, "template_kwargs": kw}


# ================================================================================ measurements
@torch.no_grad()
def generate_answers(model_dir: str | Path, questions: Sequence[str], cfg: ProfileConfig,
                     max_new_tokens: int = 48) -> list[str]:
    """Greedy answers of a stage's model to single-turn questions (for the notebooks' examples)."""
    model, tokenizer = load_model_and_tokenizer(cfg.model, str(model_dir), padding_side="left")
    model.eval()
    kw = cfg.model.chat_template_kwargs
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                             add_generation_prompt=True, **kw) for q in questions]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                         eos_token_id=stop_token_ids(tokenizer, model.generation_config.eos_token_id, **kw))
    return [tokenizer.decode(row[batch["input_ids"].shape[1]:], skip_special_tokens=True).strip() for row in out]


# ========================================================================================= stage
def run_sft(cfg: ProfileConfig, *, dataset=None, base_model: str | Path | None = None, force: bool = False,
            progress: bool = True, probe_data: str | Path | None = None, callbacks: list | None = None,
            reuse_only: bool = False, stage: str = STAGE) -> StageRun:
    """LoRA SFT of the DCPT model; reuses a complete artifact unless `force`, resumes from checkpoints.

    dataset: ChiMed-SFT records (default: the data stage's `sft` corpus); base_model: a model dir (default:
    run_dcpt(cfg).path); probe_data: a data-stage directory whose eval/probe_texts are scored before and
    after SFT with probe_perplexity, DCPT's sanity check (default: the data stage's, when it has them); callbacks: extra
    transformers TrainerCallbacks (the tests interrupt a run with one); reuse_only: raise StageNotTrained
    instead of training (this stage or the DCPT stage below it); stage: the profile section and artifact
    name, `adapt` for AntGLM-Med's task adaptation (the same LoRA SFT on one benchmark's training split)."""
    from trl import SFTConfig, SFTTrainer

    # ------------------------------------------------------------------------------ setup: inputs, artifact, reuse
    sc = setup(cfg, stage, reuse_only=reuse_only, lora_recipe="SFT")
    if base_model is None:
        from .dcpt import run_dcpt
        base_model = run_dcpt(cfg, progress=progress, reuse_only=reuse_only).path
    dataset, data_id = stage_dataset(cfg, "sft", dataset)
    art, reused = open_artifact(cfg, stage, {"data": data_id, "base_model": model_hash(base_model)}, force=force,
                                reuse_only=reuse_only)
    if reused:
        return reused

    # ------------------------------------------------------------------------------ model + data
    model, tokenizer, template = load_chat_model(cfg, base_model)
    with datasets_progress(progress):
        train_ds = tokenize_sft_dataset(tokenizer, dataset, sc.max_source_length, sc.max_target_length, **template)
    lengths = [len(r) for r in train_ds["input_ids"]]
    probe_data = probe_data_dir(cfg) if probe_data is None else probe_data
    probe_before = probe_perplexity(probe_data, model, tokenizer) if probe_data else None

    # ------------------------------------------------------------------------------ train
    args = SFTConfig(**training_kwargs(cfg, stage, work_dir(art), progress), max_length=None, packing=False,
                     include_num_input_tokens_seen="non_padding")
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                         peft_config=lora_config(sc.lora), callbacks=[NonFiniteGuard(stage), *(callbacks or [])])
    trained = train(trainer, art, stage)

    # ------------------------------------------------------------------------------ measure + save
    trainable, total = count_parameters(trainer.model)
    extra = {
        "trainer": "trl.SFTTrainer (pre-tokenized; loss on assistant tokens of every turn)",
        "trainable_params": trainable, "total_params": total,
        "trainable_fraction": round(trainable / total, 6),
        "train_examples": len(train_ds), "dropped_examples": len(dataset) - len(train_ds),
        "tokens_per_example": {"mean": round(sum(lengths) / len(lengths), 1), "max": max(lengths)},
        "label_tokens": sum(sum(t != IGNORE_INDEX for t in r) for r in train_ds["labels"]),
        **trained.throughput(), "wall_s": round(trained.seconds, 2), "resumed_from": trained.resumed_from,
        "lora": dataclasses.asdict(sc.lora), "max_source_length": sc.max_source_length,
        "max_target_length": sc.max_target_length,
        "base_model": str(base_model), "hashes": {"data": data_id, "base_model": art.inputs["base_model"]},
    }
    if probe_before is not None:  # SFT must keep what DCPT taught (DESIGN.md 3)
        extra["probe_perplexity"] = {"before": probe_before,
                                     "after": probe_perplexity(probe_data, trainer.model, tokenizer)}

    def save(out: Path) -> None:
        trainer.save_model(str(out / ADAPTER_DIR))                                 # adapter + tokenizer
        merge_adapter(base_model, out / ADAPTER_DIR, out, model_cfg=cfg.model)  # plain model for later stages

    return publish(cfg, stage, art, trainer, extra, save=save, manifest={"base_model": str(base_model)})


# ========================================================================================= figure
def plot_summary(metrics: dict, profile: str) -> Path:
    """figures/<profile>/sft_summary.png: the loss curve and the held-out probe perplexity (stated facts
    only, and whole statements; taught vs control diseases) before and after SFT."""
    from .. import plots
    from ..paths import figures_dir

    probe = metrics.get("probe_perplexity") or {}
    plots.plt.rcParams.update(plots.STYLE)
    fig, axes = plots.plt.subplots(1, 2 if probe else 1, figsize=(9.5 if probe else 5, 3.2))
    axes = axes if probe else [axes]
    steps, losses = zip(*metrics["loss_curve"]) if metrics.get("loss_curve") else ((), ())
    axes[0].plot(steps, losses, color=plots.PALETTE[0])
    axes[0].set(xlabel="optimizer step", ylabel="loss (assistant tokens)", title=f"SFT loss ({profile})")
    if probe:
        bars = [(scope, group) for scope in probe["before"] for group in probe["before"][scope]]
        x = range(len(bars))
        for k, (when, color) in enumerate((("before", plots.PALETTE[1]), ("after", plots.PALETTE[2]))):
            axes[1].bar([i + (k - 0.5) * 0.38 for i in x], [probe[when][s][g] for s, g in bars], 0.38,
                        color=color, label=f"{when} SFT")
        axes[1].set_xticks(list(x), [f"{g}\n{s}" for s, g in bars])
        axes[1].set_yscale("log")
        axes[1].set(ylabel="perplexity", title="held-out probe statements")
        axes[1].legend()
    return plots.save(fig, figures_dir(profile), "sft_summary")
