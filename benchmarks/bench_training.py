"""Training-stage throughput on the tiny profile: one small class per measurement.

    python benchmarks/bench_training.py [--steps N] [--profile tiny] [--threads T] [--json PATH]

Measurements (each a class with `run() -> dict` and `report(result) -> str`; add a stage by adding one):

- PackingRatio: the DCPT corpus packed into blocks: real-token share of the packed batches (>= 0.99 is
  the requirement; 1.0 by construction), corpus tokens that made it into a block, and the real-token
  share the one-document-per-row variant would have at the same batch size.
- DcptThroughput: tokens/s of DCPT on the tiny profile (model, batch 8 x block 256, optimizer and
  schedule as tiny.yaml says; timed from the end of step 1 to the end of step N, so start-up and the
  first step's allocations are not counted).
- DcptPackedVsPadded: the same corpus, model init and batch size, trained N steps packed and N steps
  with one document per row padded to the longest row of its batch: real (non-padding) tokens per
  second side by side, and the ratio.

Uses the tiny data stage and base model (built into the artifact cache on first use). Every Trainer
run writes into a temporary directory; nothing in results/ or figures/ changes. CPU timings on a
shared machine vary from run to run: compare numbers from the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator, set_seed

from qilin_lib.config import load_config
from qilin_lib.data import packing
from qilin_lib.data.stage import load_corpus, run_data_stage
from qilin_lib.modeling import load_model_and_tokenizer
from qilin_lib.train.common import base_model_dir, training_kwargs


# ----------------------------------------------------------------------------------------- helpers
class _RateMeter(TrainerCallback):
    """Real tokens per second between the end of the first and the end of the last optimizer step."""

    def __init__(self):
        self.marks: list[tuple[float, int]] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))

    def rate(self) -> dict:
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        steps = len(self.marks) - 1
        return {"tokens": n1 - n0, "seconds": round(t1 - t0, 3), "steps": steps,
                "tokens_per_second": round((n1 - n0) / (t1 - t0), 1) if t1 > t0 else float("nan")}


def train_steps(cfg, stage: str, model, tokenizer, dataset, collator, steps: int, count: str) -> dict:
    """Train `steps` optimizer steps with the stage's TrainingArguments; return the measured rate.

    count: "all" (packed: every position is a real token) or "non_padding" (attention_mask sum)."""
    meter = _RateMeter()
    with tempfile.TemporaryDirectory(prefix="qilin-bench-") as tmp:
        kw = training_kwargs(cfg, stage, tmp, progress=False) | {
            "max_steps": steps, "save_strategy": "no", "logging_steps": max(steps, 1),
            "include_num_input_tokens_seen": count}
        trainer = Trainer(model=model, args=TrainingArguments(**kw), train_dataset=dataset,
                          data_collator=collator, processing_class=tokenizer, callbacks=[meter])
        trainer.train()
    return meter.rate()


class Bench:
    name = "bench"

    def run(self) -> dict:
        raise NotImplementedError

    def report(self, r: dict) -> str:
        raise NotImplementedError


@dataclass
class TinySetup:
    """What every tiny-profile measurement shares: config, base model dir, DCPT corpus."""
    profile: str = "tiny"

    def __post_init__(self):
        self.cfg = load_config(self.profile)
        run_data_stage(self.cfg, progress=False)
        self.base = base_model_dir(self.cfg)
        self.texts = load_corpus(self.cfg, "cpt").select_columns(["text"])

    def model(self):
        set_seed(self.cfg.seed)
        model, tokenizer = load_model_and_tokenizer(self.cfg.model, str(self.base))
        model.config.use_cache = False
        return model, tokenizer


# ------------------------------------------------------------------------------------------ DCPT
@dataclass
class PackingRatio(Bench):
    setup: TinySetup
    name = "packing"

    def run(self) -> dict:
        _, tokenizer = self.setup.model()
        sc = self.setup.cfg.dcpt
        start = time.perf_counter()
        tokenized = packing.tokenize_documents(self.setup.texts, tokenizer)
        packed = packing.pack_tokenized(tokenized, sc.block_size)
        seconds = time.perf_counter() - start
        stats = packing.packing_stats(tokenized, packed, sc.block_size, sc.per_device_batch_size,
                                      seed=self.setup.cfg.seed)
        return stats | {"pack_seconds": round(seconds, 2)}

    def report(self, r: dict) -> str:
        return (f"packing: {r['documents']:,} documents, {r['corpus_tokens']:,} tokens -> {r['blocks']:,} blocks "
                f"of {r['block_size']} in {r['pack_seconds']} s\n"
                f"  real-token ratio packed        {r['packing_efficiency']:.4f}  (requirement >= 0.99)\n"
                f"  corpus tokens in a block       {r['token_coverage']:.4f}\n"
                f"  real-token ratio padded        {r['padded_efficiency']:.4f}  (one document per row, "
                f"batch {self.setup.cfg.dcpt.per_device_batch_size})")


@dataclass
class DcptThroughput(Bench):
    setup: TinySetup
    steps: int = 20
    name = "dcpt_throughput"

    def run(self) -> dict:
        model, tokenizer = self.setup.model()
        sc = self.setup.cfg.dcpt
        packed = packing.pack_dataset(self.setup.texts, tokenizer, sc.block_size)
        rate = train_steps(self.setup.cfg, "dcpt", model, tokenizer, packed, default_data_collator,
                           self.steps, "all")
        tokens_per_step = sc.per_device_batch_size * sc.gradient_accumulation_steps * sc.block_size
        return rate | {"tokens_per_step": tokens_per_step,
                       "seconds_per_step": round(rate["seconds"] / max(rate["steps"], 1), 3)}

    def report(self, r: dict) -> str:
        return (f"DCPT tiny: {r['tokens_per_second']:,.0f} tokens/s ({r['seconds_per_step']} s/step of "
                f"{r['tokens_per_step']} tokens; {r['steps']} timed steps)")


@dataclass
class DcptPackedVsPadded(Bench):
    setup: TinySetup
    steps: int = 20
    name = "dcpt_packed_vs_padded"

    def run(self) -> dict:
        sc = self.setup.cfg.dcpt
        out = {}
        for variant in ("packed", "padded"):
            model, tokenizer = self.setup.model()  # same init for both
            if variant == "packed":
                data = packing.pack_dataset(self.setup.texts, tokenizer, sc.block_size)
                collator, count = default_data_collator, "all"
            else:
                data = packing.padded_dataset(self.setup.texts, tokenizer, sc.block_size)
                collator, count = packing.PaddedCollator(tokenizer.pad_token_id), "non_padding"
            out[variant] = train_steps(self.setup.cfg, "dcpt", model, tokenizer, data, collator, self.steps, count)
        out["ratio"] = round(out["packed"]["tokens_per_second"] / out["padded"]["tokens_per_second"], 2)
        return out

    def report(self, r: dict) -> str:
        p, d = r["packed"], r["padded"]
        return ("DCPT packed vs dynamically padded (real tokens/s, same corpus, init and batch size):\n"
                f"  packed  {p['tokens_per_second']:>9,.0f} tokens/s  ({p['tokens']:,} tokens in {p['seconds']} s)\n"
                f"  padded  {d['tokens_per_second']:>9,.0f} tokens/s  ({d['tokens']:,} tokens in {d['seconds']} s)\n"
                f"  packed / padded = {r['ratio']:.2f}x")


# ------------------------------------------------------------------------------------------- main
def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ------------------------------------------------------------------------------------------ SFT / DPO
def _lora_stage_rate(setup: TinySetup, stage: str, steps: int) -> dict:
    """Tokens/s of `steps` optimizer steps of the stage's trainer, exactly as run_sft / run_dpo configure
    it (LoRA from the profile, pre-tokenized data), on the tiny base model (DCPT changes weights, not cost)."""
    from qilin_lib.modeling import lora_config
    from qilin_lib.train.sft import ensure_chat_template

    cfg = setup.cfg
    sc = getattr(cfg, stage)
    model, tokenizer = setup.model()
    ensure_chat_template(tokenizer)
    meter = _RateMeter()
    with tempfile.TemporaryDirectory(prefix="qilin-bench-") as tmp:
        kw = training_kwargs(cfg, stage, tmp, progress=False) | {
            "max_steps": steps, "save_strategy": "no", "logging_steps": max(steps, 1),
            "include_num_input_tokens_seen": "non_padding"}
        if stage == "sft":
            from trl import SFTConfig, SFTTrainer

            from qilin_lib.train.sft import tokenize_sft_dataset
            data = tokenize_sft_dataset(tokenizer, load_corpus(cfg, "sft"), sc.max_source_length,
                                        sc.max_target_length)
            trainer = SFTTrainer(model=model, args=SFTConfig(**kw, max_length=None), train_dataset=data,
                                 processing_class=tokenizer, peft_config=lora_config(sc.lora), callbacks=[meter])
        else:
            from trl import DPOConfig

            from qilin_lib.train.dpo import _pretokenized_trainer, tokenize_dpo_dataset
            data = tokenize_dpo_dataset(tokenizer, load_corpus(cfg, "dpo"), sc.max_source_length,
                                        sc.max_target_length)
            trainer = _pretokenized_trainer()(model=model, args=DPOConfig(**kw, beta=sc.beta, max_length=None),
                                              train_dataset=data, processing_class=tokenizer,
                                              peft_config=lora_config(sc.lora), callbacks=[meter])
        trainer.train()
    steps_per_epoch = -(-len(data) // (sc.per_device_batch_size * sc.gradient_accumulation_steps))
    rate = meter.rate()
    return rate | {"examples": len(data), "steps_per_epoch": steps_per_epoch,
                   "profile_steps": -(-int(steps_per_epoch * sc.epochs * 1000) // 1000) if sc.max_steps < 0
                   else sc.max_steps,
                   "seconds_per_step": round(rate["seconds"] / max(rate["steps"], 1), 3)}


def _budget(r: dict) -> str:
    return (f"{r['profile_steps']} steps in the profile -> about {r['profile_steps'] * r['seconds_per_step']:.0f} s "
            f"of training at this rate")


@dataclass
class SftThroughput(Bench):
    """LoRA SFT on ChiMed-SFT (non-padding tokens/s; loss on assistant tokens only)."""
    setup: TinySetup
    steps: int = 20
    name = "sft_throughput"

    def run(self) -> dict:
        return _lora_stage_rate(self.setup, "sft", self.steps)

    def report(self, r: dict) -> str:
        return (f"SFT tiny (LoRA): {r['tokens_per_second']:,.0f} tokens/s ({r['seconds_per_step']} s/step, "
                f"{r['steps']} timed steps); {_budget(r)}")


@dataclass
class DpoThroughput(Bench):
    """LoRA DPO on ChiMed-DPO: non-padding tokens/s through the policy (chosen + rejected sequences); the
    reference forward (adapter disabled) comes on top, uncounted."""
    setup: TinySetup
    steps: int = 20
    name = "dpo_throughput"

    def run(self) -> dict:
        return _lora_stage_rate(self.setup, "dpo", self.steps)

    def report(self, r: dict) -> str:
        return (f"DPO tiny (LoRA): {r['tokens_per_second']:,.0f} policy tokens/s ({r['seconds_per_step']} s/step, "
                f"{r['steps']} timed steps); {_budget(r)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per timed training run")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (default: torch's choice, one per core). On a shared machine "
                         "whose other cores are busy, 1 thread can be several times faster than 2")
    args = ap.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)

    setup = TinySetup(args.profile)
    benches = [PackingRatio(setup), DcptThroughput(setup, steps=args.steps),
               DcptPackedVsPadded(setup, steps=args.steps), SftThroughput(setup, steps=args.steps),
               DpoThroughput(setup, steps=args.steps)]
    import torch
    print(f"torch threads {torch.get_num_threads()}, load average {_loadavg()}", flush=True)
    results = {}
    for bench in benches:
        results[bench.name] = bench.run()
        print(bench.report(results[bench.name]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
