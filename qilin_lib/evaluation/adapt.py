"""Task adaptation, AntGLM-Med's third stage ("specific medical task adaptation", arXiv 2312.01040).

A LoRA fine-tune of the SFT model on ONE benchmark's training split, in that benchmark's own prompt
format, with the bare answer letter as the response; the adapted model is then evaluated on the
benchmark's test split beside the SFT model it started from. The profile's `adapt` section holds the
hyperparameters and `evaluation.adapt_benchmark` names the benchmark: the tiny profile adapts to its
CMExam-style train split (about the sft diseases, in SFT's wordings, so adaptation teaches the answer
format and not the test facts); the paper profile adapts to PubMedQA's 500 labelled non-test items,
as AntGLM-Med did.

The training itself is `run_sft(stage="adapt")`: same trainer, loss on the answer only, cached artifact,
`results/<profile>/train_adapt.json`.
"""

from __future__ import annotations

from .benchmarks import Benchmark, load_benchmark
from .runner import EvalModel


def adaptation_records(bench: Benchmark) -> list[dict]:
    """SFT conversations from the benchmark's training split: its prompt -> the answer letter(s)."""
    from ..data.records import sft

    if not bench.train:
        raise ValueError(f"benchmark {bench.name!r} has no training split to adapt to")
    return [sft([{"role": "user", "content": bench.prompt(it)}, {"role": "assistant", "content": it["answer"]}],
                source=f"{bench.name}/train") for it in bench.train]


def run_adaptation(cfg, start: EvalModel, progress: bool = True, force: bool = False) -> EvalModel:
    """Train (or reuse) the adapter on `cfg.evaluation.adapt_benchmark`'s training split; the merged
    model is returned as the `adapt` model."""
    from datasets import Dataset

    from ..train.sft import run_sft

    bench = load_benchmark(cfg, cfg.evaluation.adapt_benchmark)
    dataset = Dataset.from_list(adaptation_records(bench))
    run = run_sft(cfg, stage="adapt", dataset=dataset, base_model=start.path, progress=progress, force=force)
    return EvalModel("adapt", str(run.path), chat=True)
