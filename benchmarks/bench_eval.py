"""Evaluation speed, measured side by side in one run (issue 5's performance targets).

    python benchmarks/bench_eval.py [--profile tiny] [--items 120] [--model sft]

1. Multiple choice on the same items and model: `loglik` (every option letter scored in one batched
   forward pass) vs per-item `generate` (batch 1, greedy, the papers' protocol): questions/s and their
   ratio (target >= 10x), and whether the two agree wherever the generated answer starts with an option
   letter (greedy picks the most likely token of the whole vocabulary; loglik the most likely letter, so
   they must agree whenever that token is a letter).
2. Open QA (Huatuo-style set): batched vs one-at-a-time greedy generation, generated tokens/s and ratio.

Uses the profile's trained stages (run notebooks 01-04 first); wall times are best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import time

import torch

from qilin_lib.config import load_config
from qilin_lib.evaluation import multiple_choice as mc
from qilin_lib.evaluation.benchmarks import load_benchmark
from qilin_lib.evaluation.runner import scorer_for, stage_models


def best_of(repeat: int, fn):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--items", type=int, default=120)
    ap.add_argument("--model", default="sft", help="stage whose model is timed (base/dcpt/sft/dpo)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)

    cfg = load_config(args.profile)
    models = {m.name: m for m in stage_models(cfg)}
    if args.model not in models:
        raise SystemExit(f"stage {args.model!r} has no model yet (have {', '.join(models)}): run notebooks 01-04")
    model = models[args.model]
    scorer = scorer_for(cfg, model, progress=False)
    mcq = load_benchmark(cfg, "cmexam", args.items)
    print(f"model {model.name} ({model.path}), {len(mcq)} CMExam items, batch {scorer.batch_size}, "
          f"threads {torch.get_num_threads()}")

    # ---- 1. loglik (batched) vs per-item generate
    n_new = cfg.evaluation.max_new_tokens_mcq
    parsers = mcq.parser_functions()
    t_loglik, ll_rows = best_of(args.repeat, lambda: mc.loglik(scorer, mcq.items, mcq.prompt))
    one = scorer.batch_size
    scorer.batch_size = 1
    t_gen, gen_rows = best_of(args.repeat, lambda: mc.generate(scorer, mcq.items, mcq.prompt, parsers, n_new))
    scorer.batch_size = one
    letter_first = [(g, ll) for g, ll, it in zip(gen_rows, ll_rows, mcq.items)
                    if g["output"][:1] in it["options"]]
    agree = sum(g["output"][0] == ll["pred"] for g, ll in letter_first)
    q_ll, q_gen = len(mcq) / t_loglik, len(mcq) / t_gen
    print(f"\n[multiple choice] loglik {q_ll:8.1f} q/s | per-item generate ({n_new} new tokens) {q_gen:6.1f} q/s"
          f" | ratio {q_ll / q_gen:.1f}x (target >= 10x)")
    print(f"  answers starting with an option letter: {len(letter_first)}/{len(mcq)}; "
          f"loglik agrees on {agree}/{len(letter_first)}")

    # ---- 2. batched vs one-at-a-time generation on the Huatuo-style set
    qa = load_benchmark(cfg, "huatuo26m", args.items)
    prompts = [scorer.context(qa.prompt(it)) for it in qa.items]
    n_qa = cfg.evaluation.max_new_tokens_qa

    def tokens(outputs: list[str]) -> int:
        return sum(len(scorer.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs)

    t_batch, out_batch = best_of(args.repeat, lambda: scorer.generate(prompts, n_qa))
    scorer.batch_size = 1
    t_single, out_single = best_of(args.repeat, lambda: scorer.generate(prompts, n_qa))
    scorer.batch_size = one
    tps_b, tps_s = tokens(out_batch) / t_batch, tokens(out_single) / t_single
    same = sum(a == b for a, b in zip(out_batch, out_single))
    print(f"\n[generation] batched ({one}) {tps_b:8.1f} tokens/s | one at a time {tps_s:8.1f} tokens/s | "
          f"ratio {tps_b / tps_s:.1f}x; identical outputs {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
