"""What pinning the CPU numerics costs, and which settings change the numbers (qilin_lib.numerics).

    python benchmarks/bench_numerics.py [--steps 30] [--rounds 3]

Each setting runs in its own process (the instruction-set variables are read once per process), in
alternating rounds so that a shared host's load hits every setting alike. One process trains the tiny
profile's Llama (3.6M parameters, seed 0) for `steps` AdamW steps on fixed random 8x256-token batches and
then scores 64x256 tokens without gradients; it prints tokens/s for both, the final loss and the SHA-256 of
the trained weights. Same hash across rounds = deterministic; same hash across settings = that setting does
not move the numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {
    "pinned (AVX2, 2 threads)": {},
    "native (no cap, 2 threads)": {"QILIN_NUMERICS": "native", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "pinned, 1 thread": {"OMP_NUM_THREADS": "1"},
    "native, 1 thread": {"QILIN_NUMERICS": "native", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}
CLEARED = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES",
           "OMP_NUM_THREADS", "MKL_NUM_THREADS", "QILIN_NUMERICS")


def child(steps: int) -> dict:
    import qilin_lib  # noqa: F401  (pins, unless QILIN_NUMERICS=native)
    import torch

    from transformers import LlamaConfig, LlamaForCausalLM

    from qilin_lib.config import ModelConfig
    from qilin_lib.numerics import fingerprint

    cfg = ModelConfig()  # the tiny profile's dimensions (qilin_lib.modeling.build_tiny_model's shape)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, cfg.vocab_size, (8, 256), generator=gen) for _ in range(steps + 2)]
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True, attn_implementation="sdpa"))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for i, batch in enumerate(batches):
        if i == 2:                      # two warm-up steps (allocation, kernel selection) are not timed
            start = time.perf_counter()
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    train_s = time.perf_counter() - start
    model.eval()
    probe = torch.randint(0, cfg.vocab_size, (64, 256), generator=gen)
    with torch.no_grad():
        model(input_ids=probe[:8])
        start = time.perf_counter()
        model(input_ids=probe)
        infer_s = time.perf_counter() - start
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().contiguous().numpy().tobytes())
    return {"train_tokens_per_s": steps * 8 * 256 / train_s, "infer_tokens_per_s": 64 * 256 / infer_s,
            "final_loss": loss.item(), "weights": digest.hexdigest()[:16], "numerics": fingerprint()}


def run_setting(env: dict, steps: int) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    out = subprocess.run([sys.executable, __file__, "--child", "--steps", str(steps)], env=base | env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.steps)))
        return
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for r in range(args.rounds):
        for name, env in SETTINGS.items():
            runs[name].append(run_setting(env, args.steps))
            print(f"round {r + 1} {name}: {runs[name][-1]['train_tokens_per_s']:.0f} train tok/s", flush=True)
    print(f"\n{'setting':<28} {'capability':<10} {'train tok/s':>12} {'infer tok/s':>12} {'final loss':>12} weights")
    for name, rs in runs.items():
        hashes = {r["weights"] for r in rs}
        print(f"{name:<28} {rs[0]['numerics']['cpu_capability']:<10} "
              f"{statistics.median(r['train_tokens_per_s'] for r in rs):>12.0f} "
              f"{statistics.median(r['infer_tokens_per_s'] for r in rs):>12.0f} {rs[0]['final_loss']:>12.6f} "
              f"{rs[0]['weights']}{'' if len(hashes) == 1 else ' NOT DETERMINISTIC: ' + ', '.join(sorted(hashes))}")
    names = list(SETTINGS)
    med = {n: statistics.median(r["train_tokens_per_s"] for r in runs[n]) for n in names}
    med_inf = {n: statistics.median(r["infer_tokens_per_s"] for r in runs[n]) for n in names}
    print(f"\npinned / native, 2 threads: training {med[names[0]] / med[names[1]]:.2f}x, "
          f"inference {med_inf[names[0]] / med_inf[names[1]]:.2f}x")
    same = lambda a, b: runs[a][0]["weights"] == runs[b][0]["weights"]  # noqa: E731
    print(f"weights equal, pinned 2 vs 1 thread: {same(names[0], names[2])}; native 2 vs 1 thread: "
          f"{same(names[1], names[3])}; pinned vs native: {same(names[0], names[1])}")


if __name__ == "__main__":
    main()
