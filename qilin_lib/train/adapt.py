"""Task adaptation, AntGLM-Med's third stage ("specific medical task adaptation", arXiv 2312.01040).

A LoRA fine-tune of the SFT model on ONE benchmark's training split, in that benchmark's own prompt
format, with the bare answer letter as the response; notebook 05 then evaluates the adapted model on the
benchmark's test split beside the SFT model it started from. The profile's `adapt` section holds the
hyperparameters and `evaluation.adapt_benchmark` names the benchmark: the tiny profile adapts to its
CMExam-style train split (about the sft diseases, in SFT's wordings, so adaptation teaches the answer
format and not the test facts); the paper profile adapts to PubMedQA's 500 labelled non-test items,
as AntGLM-Med did.

A training stage like the others (`qilin train adapt`, `run_or_launch("adapt", ...)`, several GPUs through
the launcher): the training itself is `run_sft(stage="adapt")`, same trainer, loss on the answer only,
cached artifact `adapt-<key>`, `results/<profile>/train_adapt.json`.
"""

from __future__ import annotations

from ..config import ProfileConfig
from .common import StageRun

STAGE = "adapt"


def adaptation_records(bench) -> list[dict]:
    """SFT conversations from the benchmark's training split: its prompt -> the answer letter(s)."""
    from ..data.records import sft

    if not bench.train:
        raise ValueError(f"benchmark {bench.name!r} has no training split to adapt to")
    return [sft([{"role": "user", "content": bench.prompt(it)}, {"role": "assistant", "content": it["answer"]}],
                source=f"{bench.name}/train") for it in bench.train]


def run_adapt(cfg: ProfileConfig, *, force: bool = False, progress: bool = True,
              reuse_only: bool = False) -> StageRun:
    """Train (or reuse) the adapter on `cfg.evaluation.adapt_benchmark`'s training split, starting from the
    SFT model (trained first if it is not; with reuse_only, StageNotTrained instead)."""
    from datasets import Dataset

    from ..evaluation.benchmarks import load_benchmark
    from .sft import run_sft

    name = cfg.evaluation.adapt_benchmark
    if not name:
        raise ValueError(f"profile {cfg.name!r} sets no evaluation.adapt_benchmark: nothing to adapt to")
    start = run_sft(cfg, progress=progress, reuse_only=reuse_only).path
    dataset = Dataset.from_list(adaptation_records(load_benchmark(cfg, name)))
    return run_sft(cfg, stage=STAGE, dataset=dataset, base_model=start, progress=progress, force=force,
                   reuse_only=reuse_only)


def adapt_after_sft(profile: str, overrides: dict | None = None, *, force: bool = False,
                    progress: bool = True) -> StageRun | None:
    """What notebook 05 and `qilin evaluate` run before evaluating: the adaptation stage through the
    launcher (several GPUs -> several processes, like every stage), when the profile names an adaptation
    benchmark and the SFT model it starts from exists; None (and a line saying why) otherwise."""
    from ..config import load_config
    from .common import StageNotTrained
    from .launch import run_or_launch
    from .sft import run_sft

    cfg = load_config(profile, overrides)
    if not cfg.evaluation.adapt_benchmark:
        return None
    try:
        run_sft(cfg, progress=False, reuse_only=True)
    except StageNotTrained as err:
        print(f"[adapt] not run: no trained SFT model to adapt ({err})", flush=True)
        return None
    return run_or_launch(STAGE, profile, overrides, force=force, progress=progress)
