"""What the training stages share: the stage skeleton, TrainingArguments from a profile, checkpoint/resume,
the stage artifact, and the results JSON + loss curve every stage writes.

The skeleton. DCPT (dcpt.py), SFT (sft.py), DPO (dpo.py) and task adaptation (adapt.py, SFT's run on a
benchmark's split) each read top to bottom in the same five steps and write only what is their own (data,
model, trainer, metrics):

    sc = setup(cfg, stage, reuse_only=...)                  # 1 profile section; fail early on a read-only tree
    art, reused = open_artifact(cfg, stage, inputs, ...)    # 2 the cache decision: reuse, look up, or train
    if reused: return reused
    ... the stage's data, model and trainer ...             # 3 the stage's own
    trained = train(trainer, art, stage)                    # 4 resumes from the newest complete checkpoint
    ... the stage's metrics ...
    return publish(cfg, stage, art, trainer, extra, save=..., manifest=...)   # 5 rank 0 writes, all wait

Layout per stage (key = hash of the stage config, its inputs' hashes and the source of the code that
trains it, STAGE_CODE):
    artifacts/<profile>/<stage>-<key>/        the final model/adapter, complete only when fully written
    artifacts/<profile>/<stage>-<key>.work/   Trainer checkpoints while training (resume reads these)
A run that finds the complete artifact reuses it; one that finds checkpoints resumes from the last
complete one; the work directory is deleted once the final artifact is in place. A non-finite loss or
gradient norm stops training with an error (NonFiniteGuard), so no diverged model is ever marked complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback

from ..cache import StageArtifact, atomic_write_json, hash_obj
from ..config import ProfileConfig, StageConfig
from ..model_source import MODEL_IDENTITY_SUFFIXES, base_model_dir, model_hash  # noqa: F401 (re-exported)
from ..paths import PACKAGE_DIR, ensure_writable, figures_dir, results_dir, source_hash
from ..reporting import provenance

log = logging.getLogger(__name__)

METRICS_FILE = "train_metrics.json"  # a copy of the stage's metrics inside its artifact: what a reuse returns
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# What a Trainer checkpoint holds its weights in: a full model (DCPT) or a LoRA adapter (SFT, DPO, LoRA DCPT).
CHECKPOINT_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors",
                      "pytorch_model.bin", "pytorch_model.bin.index.json", "adapter_model.bin")
# The modules (relative to qilin_lib/) whose source is part of each stage's artifact key, so that a fix to
# how a stage trains retrains it instead of serving the old model. Every stage: this module (training
# arguments, resume) and modeling.py (loading, dtypes, LoRA config, merging the adapter). Imports that only
# measure (the data stage's probe perplexity, which every stage reports) are left out: a metric fix keeps the
# model (logprobs.py is in SFT's and DPO's keys for the chat turns their loss masks are cut from).
SHARED_CODE = ("train/common.py", "modeling.py", "chat_templates.py")  # templates are applied on load
STAGE_CODE = {
    "dcpt": ("train/dcpt.py", "data/packing.py"),  # packing decides which tokens each training block holds
    "sft": ("train/sft.py", "logprobs.py"),        # logprobs.py: the chat turns the loss mask is cut from
    "adapt": ("train/sft.py", "train/adapt.py", "logprobs.py"),  # run_sft(stage="adapt") on a benchmark's split
    "dpo": ("train/dpo.py", "train/sft.py", "logprobs.py"),  # pairs: SFT's template and length rule
}


class StageNotTrained(FileNotFoundError):
    """A stage asked to reuse its artifact only (`reuse_only=True`) found none: train it first."""

    def __init__(self, stage: str, path: Path):
        super().__init__(f"no complete {stage} artifact at {path}: run its notebook (or `qilin train {stage}`)")
        self.stage = stage


@dataclass
class StageRun:
    """What a stage returns: where its model is, what it measured, whether it was reused."""
    stage: str
    path: Path
    metrics: dict
    reused: bool


# ==================================================================================== the skeleton
def setup(cfg: ProfileConfig, stage: str, *, reuse_only: bool, lora_recipe: str = "") -> StageConfig:
    """Step 1: the stage's profile section, checked before any work. `lora_recipe` names the paper recipe
    of a stage that only trains a LoRA adapter (SFT, DPO), which refuses `lora.enabled: false`. A run that
    may train fails now on a read-only results/figures/artifacts dir; a `reuse_only` lookup only reads."""
    sc: StageConfig = getattr(cfg, stage)
    if lora_recipe and not sc.lora.enabled:
        raise ValueError(f"{stage}.lora.enabled is false: this stage trains a LoRA adapter (Qilin-Med's "
                         f"{lora_recipe} recipe)")
    if not reuse_only:
        ensure_writable(cfg.name)
    return sc


def open_artifact(cfg: ProfileConfig, stage: str, inputs: dict[str, str], *, force: bool,
                  reuse_only: bool) -> tuple[StageArtifact, StageRun | None]:
    """Step 2, the cache decision: the stage's artifact (keyed by config, `inputs` and code) and, when it is
    complete and not forced, the StageRun to return instead of training (reuse_or_start)."""
    art = stage_artifact(cfg, stage, inputs)
    reused = reuse_or_start(cfg, stage, art, force=force, reuse_only=reuse_only)
    if reused is not None:
        log.info("reusing %s artifact %s", stage, art.path)
    return art, reused


@dataclass
class Trained:
    """What `train` measured around trainer.train(): its output, the checkpoint it resumed from, and the
    input tokens that checkpoint had already seen (a resumed run counts only its own part)."""
    trainer: object
    output: object          # transformers TrainOutput
    resume: str | None
    tokens_before: int
    seconds: float          # wall time of trainer.train()

    @property
    def resumed_from(self) -> str | None:
        return Path(self.resume).name if self.resume else None

    def throughput(self) -> dict:
        """Non-padding input tokens of this call per second of the Trainer's own train_runtime."""
        seen = int(self.trainer.state.num_input_tokens_seen)
        runtime = self.output.metrics.get("train_runtime") or float("nan")
        return {"tokens_trained": seen, "tokens_per_second": round((seen - self.tokens_before) / runtime, 1),
                "train_runtime_s": round(runtime, 2)}


def train(trainer, art: StageArtifact, stage: str) -> Trained:
    """Step 4: train, resuming from the newest complete checkpoint in the artifact's work dir (optimizer,
    scheduler, RNG and data position included). Its token count is read before training: the Trainer's
    checkpoint rotation may delete the checkpoint a run resumed from."""
    resume = last_complete_checkpoint(work_dir(art))
    tokens_before = tokens_seen(resume)
    if resume:
        log.info("resuming %s from %s", stage, resume)
    start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    return Trained(trainer, output, resume, tokens_before, time.perf_counter() - start)


def publish(cfg: ProfileConfig, stage: str, art: StageArtifact, trainer, extra: dict, *,
            save: Callable[[Path], None], manifest: dict) -> StageRun:
    """Step 5: global rank 0 writes the model into the artifact (`save(out)`), then
    results/<profile>/train_<stage>.json, the loss figure and the metrics copy that a reuse returns
    (finish_stage); the artifact is complete only when all of it is written, and the work dir is deleted.
    `manifest`: run facts for the manifest only. Every rank waits; rank 0 returns the metrics as a reuse
    will (read back from the artifact), the other ranks an empty dict."""
    rank0 = trainer.is_world_process_zero()
    if rank0:
        with art.writing(extra=manifest) as out:
            save(out)
            atomic_write_json(out / METRICS_FILE, finish_stage(cfg, stage, art, trainer, extra))
        cleanup_work_dir(art)
    trainer.accelerator.wait_for_everyone()
    metrics = json.loads((art.path / METRICS_FILE).read_text("utf-8")) if rank0 else {}
    return StageRun(stage, art.path, metrics, reused=False)


# ====================================================================================== the parts
def stage_artifact(cfg: ProfileConfig, stage: str, inputs: dict[str, str]) -> StageArtifact:
    config = {"stage": dataclasses.asdict(getattr(cfg, stage)), "model": dataclasses.asdict(cfg.model),
              "seed": cfg.seed}
    code = source_hash(*SHARED_CODE, *STAGE_CODE[stage])
    return StageArtifact(cfg.name, stage, config=config, inputs={**inputs, "code": code})


def work_dir(art: StageArtifact) -> Path:
    return art.path.with_name(art.path.name + ".work")


def last_complete_checkpoint(directory: str | Path) -> str | None:
    """The newest checkpoint-N whose weights exist and whose trainer_state.json (written by the Trainer
    after the weights and optimizer state) parses. A checkpoint interrupted mid-save, or one whose state
    file was truncated (a full disk, a killed copy), is skipped for the one before it; resuming from it
    would fail on every rerun."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in directory.iterdir()
                    if p.is_dir() and (m := _CHECKPOINT.match(p.name))), reverse=True)
    return next((str(p) for _, p in found if _checkpoint_state(p) is not None
                 and any((p / name).exists() for name in CHECKPOINT_WEIGHTS)), None)


def _checkpoint_state(checkpoint: Path) -> dict | None:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text("utf-8"))
    except (OSError, ValueError):  # missing, unreadable, truncated or not UTF-8
        return None
    return state if isinstance(state, dict) else None


def tokens_seen(checkpoint: str | None) -> int:
    """Input tokens the run had trained on when it saved `checkpoint` (0 for a fresh start). Read before
    training resumes: the Trainer's checkpoint rotation may delete the checkpoint a run resumed from."""
    state = _checkpoint_state(Path(checkpoint)) if checkpoint else None
    return int(state.get("num_input_tokens_seen", 0)) if state else 0


def deepspeed_config_path(name: str) -> str | None:
    """A DeepSpeed config shipped with the package (`zero2` -> qilin_lib/configs/deepspeed_zero2.json)."""
    if not name:
        return None
    path = PACKAGE_DIR / "configs" / f"deepspeed_{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no shipped DeepSpeed config named {name!r}")
    return str(path)


def cpu_deepspeed(cfg: ProfileConfig, stage: str) -> bool:
    """Whether this CPU process trains with DeepSpeed: only as one of several launched CPU workers
    (`hardware.cpu_processes`, torchrun sets WORLD_SIZE) of a stage that names a DeepSpeed config. DeepSpeed
    then runs on its CPU accelerator over gloo; its shared-memory allreduce, which it would JIT-compile
    (C++ with ninja: minutes, and a compiler on the machine), is replaced by its own plain torch.distributed
    fallback."""
    if not getattr(cfg, stage).deepspeed or cfg.hardware.cpu_processes < 2 or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    import importlib

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None  # None = DeepSpeed's fallback
    # accelerate names no backend for DeepSpeed without an accelerator, and with none it counts one process
    # (ZeRO-2's batch check then fails): the process state is configured here, once, with gloo, and the
    # TrainingArguments reuse it (accelerator_config use_configured_state).
    from accelerate import PartialState

    if not PartialState._shared_state:
        os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
        try:
            PartialState(backend="gloo")
        finally:
            del os.environ["ACCELERATE_USE_DEEPSPEED"]
    return True


def training_kwargs(cfg: ProfileConfig, stage: str, output_dir: str | Path, progress: bool = True) -> dict:
    """TrainingArguments keywords (valid for SFTConfig/DPOConfig too) from the profile's stage section."""
    sc: StageConfig = getattr(cfg, stage)
    on_gpu = torch.cuda.is_available()
    deepspeed = deepspeed_config_path(sc.deepspeed) if on_gpu or cpu_deepspeed(cfg, stage) else None
    # transformers 5 folded warmup_ratio into warmup_steps: a float in [0, 1) is a ratio of total steps.
    warmup = sc.warmup_steps if sc.warmup_steps > 0 else float(sc.warmup_ratio)
    return dict(
        output_dir=str(output_dir), seed=cfg.seed, data_seed=cfg.seed,
        per_device_train_batch_size=sc.per_device_batch_size,
        gradient_accumulation_steps=sc.gradient_accumulation_steps,
        learning_rate=sc.learning_rate, lr_scheduler_type=sc.lr_scheduler, warmup_steps=warmup,
        weight_decay=sc.weight_decay, num_train_epochs=sc.epochs, max_steps=sc.max_steps,
        logging_steps=sc.logging_steps, save_strategy="steps", save_steps=sc.save_steps, save_total_limit=2,
        bf16=cfg.hardware.bf16 and on_gpu, gradient_checkpointing=sc.gradient_checkpointing,
        # use_cpu would make the Trainer skip DeepSpeed; on CPU it places the model on CPU by itself
        deepspeed=deepspeed, use_cpu=not on_gpu and not deepspeed,
        # DeepSpeed on CPU: the process state configured by cpu_deepspeed (gloo), not one built from scratch
        **({"accelerator_config": {"use_configured_state": True}} if deepspeed and not on_gpu else {}),
        report_to="none", disable_tqdm=not progress, dataloader_num_workers=0,
        # Log a non-finite step loss as it is (the default hides it behind the mean of earlier losses) so
        # that NonFiniteGuard sees it; with finite losses the logged numbers are the same.
        logging_nan_inf_filter=False,
    )


class NonFiniteError(FloatingPointError):
    """Training produced a non-finite loss or gradient norm; the stage stopped without saving its model."""


class NonFiniteGuard(TrainerCallback):
    """Raise NonFiniteError at the first logged non-finite `loss` or `grad_norm`: every stage trains with it,
    so a diverged run stops loudly instead of being saved and reused as complete. The stages train in fp32
    or bf16, with no fp16 loss scaler that skips overflowing steps: an inf here is divergence, not a probe."""

    KEYS = ("loss", "grad_norm")

    def __init__(self, stage: str):
        self.stage = stage

    def on_log(self, args, state, control, logs=None, **kwargs):
        bad = {k: logs[k] for k in self.KEYS if k in (logs or {}) and not math.isfinite(float(logs[k]))}
        if bad:
            raise NonFiniteError(
                f"{self.stage}: non-finite {', '.join(f'{k}={v}' for k, v in bad.items())} at step "
                f"{state.global_step}; training stopped before the model was saved (lower the learning "
                "rate or check the data)")


def finish_stage(cfg: ProfileConfig, stage: str, art: StageArtifact, trainer, extra: dict) -> dict:
    """Write results/<profile>/train_<stage>.json (metrics + provenance) and the loss curve figure."""
    args = trainer.args
    history = trainer.state.log_history
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    metrics = {
        "stage": stage, "profile": cfg.name, "global_steps": trainer.state.global_step,
        "first_loss": losses[0][1] if losses else None, "final_loss": losses[-1][1] if losses else None,
        "loss_curve": losses, **extra,
        "provenance": provenance() | {
            "device": str(args.device), "world_size": args.world_size, "seed": cfg.seed,
            "deepspeed_zero_stage": _zero_stage(trainer),
            "effective_global_batch": args.per_device_train_batch_size * args.gradient_accumulation_steps
            * args.world_size,
            "artifact_key": art.key, "inputs": art.inputs,
        },
    }
    return publish_metrics(cfg, stage, metrics)


def _zero_stage(trainer) -> int | None:
    """The ZeRO stage of the DeepSpeed engine that trained, None without DeepSpeed: what ran, not what the
    profile asked for (a CPU run in one process drops the config)."""
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return None
    engine = trainer.model_wrapped
    return engine.zero_optimization_stage() if hasattr(engine, "zero_optimization_stage") else None


def publish_metrics(cfg: ProfileConfig, stage: str, metrics: dict) -> dict:
    """results/<profile>/train_<stage>.json and figures/<profile>/loss_<stage>.png from a stage's metrics;
    also called when a cached artifact is reused, so results/ always describe the model later stages load."""
    from .. import plots

    atomic_write_json(results_dir(cfg.name) / f"train_{stage}.json", metrics)
    if metrics.get("loss_curve"):
        fig, ax = plots.figure(5, 3)
        ax.plot(*zip(*metrics["loss_curve"]), color=plots.PALETTE[0])
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss")
        ax.set_title(f"{stage.upper()} loss ({cfg.name})")
        plots.save(fig, figures_dir(cfg.name), f"loss_{stage}")
    return metrics


def reuse_or_start(cfg: ProfileConfig, stage: str, art: StageArtifact, *, force: bool,
                   reuse_only: bool) -> StageRun | None:
    """The cache decision every stage makes first. A complete artifact (unless `force`) is returned, its
    metrics and loss curve republished so that results/ describe the model later stages load (a
    `reuse_only` lookup only reads them); `reuse_only` without one raises StageNotTrained; otherwise None,
    after a forced run has cleared old checkpoints (it starts from its input model, not from them)."""
    if art.complete and not force:
        stored = art.path / METRICS_FILE
        metrics = json.loads(stored.read_text("utf-8")) if stored.exists() else {}
        if metrics and not reuse_only:
            metrics = publish_metrics(cfg, stage, metrics)
        return StageRun(stage, art.path, metrics, reused=True)
    if reuse_only:
        raise StageNotTrained(stage, art.path)
    if force:
        cleanup_work_dir(art)
    return None


def dataset_hash(dataset) -> str:
    """datasets' fingerprint (content-derived for in-memory data, the saved state for data on disk)."""
    fingerprint = getattr(dataset, "_fingerprint", None)
    return fingerprint or hash_obj(list(dataset))


def stage_dataset(cfg: ProfileConfig, corpus: str, dataset=None):
    """(training data, its identity for the artifact key): the data stage's `corpus`, identified by the
    data artifact's output hash, or a dataset passed in, identified by its fingerprint."""
    if dataset is not None:
        return dataset, dataset_hash(dataset)
    from ..data.stage import data_artifact, load_corpus

    return load_corpus(cfg, corpus), f"{data_artifact(cfg).manifest['output_hash']}/{corpus}"


def cleanup_work_dir(art: StageArtifact) -> None:
    shutil.rmtree(work_dir(art), ignore_errors=True)




def probe_data_dir(cfg: ProfileConfig) -> Path | None:
    """The data stage's directory when it is complete (its eval/probe_texts are scored before and after a
    stage by logprobs.probe_perplexity), else None."""
    from ..data.stage import data_artifact

    art = data_artifact(cfg)
    return art.path if art.complete else None


@contextlib.contextmanager
def datasets_progress(enabled: bool):
    """Silence datasets' map() progress bars when progress=False."""
    from datasets.utils.logging import (
        disable_progress_bar,
        enable_progress_bar,
        is_progress_bar_enabled,
    )

    was = is_progress_bar_enabled()
    if not enabled:
        disable_progress_bar()
    try:
        yield
    finally:
        if was and not enabled:
            enable_progress_bar()
