"""Evaluation speed, measured side by side in one run on the same model and items.

    python benchmarks/bench_eval.py [--profile tiny] [--items 120] [--model sft | --model-dir DIR] [--repeat 2]
                                    [--served] [--lm-eval [--lm-eval-venv DIR]] [--skip-local]

Always (unless --skip-local):
1. Multiple choice (CMExam set): `loglik` (every option letter scored in one batched forward pass) vs
   per-item `generate` (batch 1, greedy, the papers' protocol): questions/s and their ratio (target >= 10x),
   and whether the two agree wherever the generated answer starts with an option letter.
2. Open QA (Huatuo-style set): batched vs one-at-a-time greedy generation, generated tokens/s and ratio.

--served: 3. the local backend vs the served backend (`evaluation.backend: openai`) against a real
   OpenAI-compatible server started here, `transformers serve <model>` (transformers' own; vLLM/SGLang do
   not run on a CPU-only machine, and need their own venv anyway). It returns no prompt log-probabilities,
   so both backends generate: MCQ answers (questions/s) and Huatuo-style answers (generated tokens/s), and
   how many outputs are identical.

--lm-eval: 4. our `loglik` mode vs lm-evaluation-harness 0.4.13's `hf` backend on C-Eval medical val and
   PubMedQA (the real samples of ../shared/data), with our prompts: the items are exported as an lm-eval
   task (lm_eval_task.py: the rendered prompt, the option letters, target_delimiter "") that lm-eval runs in
   its own venv (created on first use, `--lm-eval-venv`; lm_eval_driver.py). Items/s of each (ours: the
   `mc.loglik` pass; lm-eval: `simple_evaluate` with the model already loaded), the ratio (target >= 1.5x),
   identical per-item choices and the largest log-likelihood difference.

Models: a stage of the profile (`--model`, run notebooks 01-04 first) or any HF model directory
(`--model-dir`, `--chat` to prompt it through its chat template). Wall times are best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_eval_task import export_task

from qilin_lib.config import load_config
from qilin_lib.evaluation import multiple_choice as mc
from qilin_lib.evaluation.benchmarks import load_benchmark
from qilin_lib.evaluation.runner import EvalModel, scorer_for, stage_models
from qilin_lib.evaluation.served import transformers_serve
from qilin_lib.paths import artifacts_root, shared_dir

HERE = Path(__file__).resolve().parent
LM_EVAL = "lm-eval[hf]==0.4.13"
# lm-eval's venv gets requirements.txt's pins of what it shares with us: the same torch (the CPU build on this
# disk; an unpinned torch pulls a multi-GB CUDA build) and the same transformers / tokenizers numerics.
SHARED_WITH_LM_EVAL = ("torch", "transformers", "tokenizers", "accelerate", "peft", "datasets", "evaluate")


def lm_eval_pins() -> list[str]:
    lines = (HERE.parent / "requirements.txt").read_text("utf-8").splitlines()
    pins = {line.split("==")[0].strip(): line.strip() for line in lines if "==" in line and not line.startswith("#")}
    missing = [name for name in SHARED_WITH_LM_EVAL if name not in pins]
    if missing:
        raise SystemExit(f"requirements.txt pins none of {missing}: lm-eval's venv would pull other builds")
    return [pins[name] for name in SHARED_WITH_LM_EVAL]


def best_of(repeat: int, fn):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def alternating(repeat: int, first, second) -> tuple[tuple[float, object], tuple[float, object]]:
    """best_of for two functions run in turns, so that load from anything else falls on both alike."""
    runs = [(best_of(1, first), best_of(1, second)) for _ in range(repeat)]
    return min((a for a, _ in runs), key=lambda r: r[0]), min((b for _, b in runs), key=lambda r: r[0])


def count_tokens(scorer, outputs: list[str]) -> int:
    return sum(len(scorer.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs)


# ------------------------------------------------------------------------------ 1-2: local modes
def local_modes(cfg, scorer, items: int, repeat: int) -> None:
    mcq = load_benchmark(cfg, "cmexam", items)
    n_new = cfg.evaluation.max_new_tokens_mcq
    t_loglik, ll_rows = best_of(repeat, lambda: mc.loglik(scorer, mcq.items, mcq.prompt))
    one = scorer.batch_size
    scorer.batch_size = 1
    t_gen, gen_rows = best_of(repeat, lambda: mc.generate(scorer, mcq.items, mcq.prompt, mcq.parser_functions(), n_new))
    scorer.batch_size = one
    letter_first = [(g, ll) for g, ll, it in zip(gen_rows, ll_rows, mcq.items) if g["output"][:1] in it["options"]]
    agree = sum(g["output"][0] == ll["pred"] for g, ll in letter_first)
    q_ll, q_gen = len(mcq) / t_loglik, len(mcq) / t_gen
    print(f"\n[multiple choice] {len(mcq)} CMExam items: loglik {q_ll:8.1f} q/s | per-item generate ({n_new} new "
          f"tokens) {q_gen:6.1f} q/s | ratio {q_ll / q_gen:.1f}x (target >= 10x)")
    print(f"  answers starting with an option letter: {len(letter_first)}/{len(mcq)}; "
          f"loglik agrees on {agree}/{len(letter_first)}")

    qa = load_benchmark(cfg, "huatuo26m", items)
    prompts = [scorer.context(qa.prompt(it)) for it in qa.items]
    n_qa = cfg.evaluation.max_new_tokens_qa
    t_batch, out_batch = best_of(repeat, lambda: scorer.generate(prompts, n_qa))
    scorer.batch_size = 1
    t_single, out_single = best_of(repeat, lambda: scorer.generate(prompts, n_qa))
    scorer.batch_size = one
    tps_b, tps_s = count_tokens(scorer, out_batch) / t_batch, count_tokens(scorer, out_single) / t_single
    same = sum(a == b for a, b in zip(out_batch, out_single))
    print(f"\n[generation] batched ({one}) {tps_b:8.1f} tokens/s | one at a time {tps_s:8.1f} tokens/s | "
          f"ratio {tps_b / tps_s:.1f}x; identical outputs {same}/{len(prompts)}")


# ------------------------------------------------------------------------------- 3: served backend
def served_vs_local(cfg, model: EvalModel, local, items: int, repeat: int) -> None:
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        print("\n[served] skipped: transformers serve needs fastapi, uvicorn and openai (requirements.txt)")
        return
    mcq = load_benchmark(cfg, "cmexam", items)
    qa = load_benchmark(cfg, "huatuo26m", items)
    n_mcq, n_qa = cfg.evaluation.max_new_tokens_mcq, cfg.evaluation.max_new_tokens_qa
    mcq_prompts = [local.context(mcq.prompt(it)) for it in mcq.items]
    qa_prompts = [local.context(qa.prompt(it)) for it in qa.items]
    with tempfile.TemporaryDirectory() as tmp, transformers_serve(model.path, Path(tmp) / "serve.log") as url:
        cfg.evaluation.backend, cfg.evaluation.base_url = "openai", url
        served = scorer_for(cfg, model, progress=False)
        cfg.evaluation.backend = "local"
        print(f"\n[served] transformers serve at {url}, {served.concurrency} requests in flight; local batch "
              f"{local.batch_size}; prompt log-probabilities from the server: {bool(served.supports_logprobs)}")
        for label, prompts, n_new in (("MCQ answers (CMExam)", mcq_prompts, n_mcq), ("QA answers (Huatuo)", qa_prompts, n_qa)):
            (t_local, out_local), (t_served, out_served) = alternating(
                repeat, lambda p=prompts, n=n_new: local.generate(p, n), lambda p=prompts, n=n_new: served.generate(p, n))
            tok_local, tok_served = count_tokens(local, out_local), count_tokens(local, out_served)
            same = sum(a == b for a, b in zip(out_local, out_served))
            print(f"  {label}, {len(prompts)} items, {n_new} new tokens: local {len(prompts) / t_local:7.1f} q/s "
                  f"{tok_local / t_local:8.1f} tokens/s | served {len(prompts) / t_served:7.1f} q/s "
                  f"{tok_served / t_served:8.1f} tokens/s | served/local {t_local / t_served:.2f}x; "
                  f"identical outputs {same}/{len(prompts)}")


# ---------------------------------------------------------------------------- 4: lm-eval's hf backend
def lm_eval_python(venv: Path) -> Path | None:
    """lm-eval's venv (created with LM_EVAL and our pins on first use); None, with the reason printed, when
    it cannot be installed (no registry, no wheel)."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import lm_eval"], check=False, capture_output=True).returncode == 0:
        return python
    print(f"[lm-eval] installing {LM_EVAL} into {venv} (once) ...", flush=True)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", LM_EVAL, *lm_eval_pins()]]
    for cmd in steps:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"[lm-eval] skipped: `{' '.join(cmd)}` failed:\n{(done.stderr or done.stdout)[-1500:]}")
            return None
    return python


def lm_eval_items(cfg, items: int) -> dict:
    """{task name: benchmark} on the real samples of ../shared/data (all PQA-L items of the sample: the
    speed comparison needs no official split)."""
    data = shared_dir() / "data"
    if not (data / "ceval_medical").is_dir() or not (data / "pubmedqa" / "pqal_trainval.json").exists():
        raise SystemExit(f"--lm-eval needs the real samples in {data} (ceval_medical, pubmedqa)")
    cfg.data.generator = "sources"
    cfg.data.benchmarks = {"ceval": str(data / "ceval_medical"),
                           "pubmedqa": {"path": str(data / "pubmedqa" / "pqal_trainval.json")}}
    return {"qilin_ceval": load_benchmark(cfg, "ceval", items), "qilin_pubmedqa": load_benchmark(cfg, "pubmedqa", items)}


def ours_vs_lm_eval(cfg, model: EvalModel, scorer, items: int, repeat: int, venv: Path) -> None:
    python = lm_eval_python(venv)
    if python is None:
        return
    benches = lm_eval_items(cfg, items)
    prompts = {task: [scorer.context(bench.prompt(it)) for it in bench.items] for task, bench in benches.items()}
    # Rounds alternate lm-eval's run and ours (best of `repeat` each), so that load from anything else on the
    # machine falls on both sides alike.
    seconds = {side: {task: [] for task in benches} for side in ("ours", "lm-eval", "lm-eval scoring")}
    ours: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task, bench in benches.items():
            export_task(tmp, task, [(it["id"], text, list(it["options"]), it["answer"])
                                    for it, text in zip(bench.items, prompts[task])])
        out = Path(tmp) / "lm_eval.json"
        cmd = [str(python), str(HERE / "lm_eval_driver.py"), model.path, tmp, str(out), "--tasks", *benches,
               "--batch-size", str(scorer.batch_size), "--max-length", str(scorer.max_length), "--repeat", "1"]
        for _ in range(repeat):
            done = subprocess.run(cmd, check=False, capture_output=True, text=True,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
            if done.returncode != 0:
                raise SystemExit(f"lm-eval failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
            theirs = json.loads(out.read_text("utf-8"))
            for task, bench in benches.items():
                seconds["lm-eval"][task] += theirs["tasks"][task]["seconds"]
                seconds["lm-eval scoring"][task] += theirs["tasks"][task]["loglikelihood_seconds"]
                t_ours, ours[task] = best_of(1, lambda b=bench: mc.loglik(scorer, b.items, b.prompt))
                seconds["ours"][task].append(t_ours)
    print(f"\n[lm-eval] lm-eval {theirs['lm_eval']} (transformers {theirs['transformers']}, torch {theirs['torch']}) "
          f"hf backend, batch {scorer.batch_size}, window {scorer.max_length}; model load {theirs['load_seconds']:.1f} s "
          f"(not counted); best of {repeat} alternating rounds. ours = the loglik pass (tokenization + forward); "
          "lm-eval = simple_evaluate with the model loaded (requests, scoring, metrics), of which scoring = its "
          "loglikelihood call (tokenization + forward)")
    for task, bench in benches.items():
        rows, t_ours, t_theirs = ours[task], min(seconds["ours"][task]), min(seconds["lm-eval"][task])
        t_scoring = min(seconds["lm-eval scoring"][task])
        lm_rows = {s["doc_id"]: s["logliks"] for s in theirs["tasks"][task]["samples"]}  # ids repeat across subjects
        same, worst, worst_offset = 0, 0.0, 0.0
        for i, (it, row) in enumerate(zip(bench.items, rows)):
            letters = list(it["options"])
            lm = lm_rows[i]
            same += letters[max(range(len(lm)), key=lm.__getitem__)] == row["pred"]
            diffs = [v - row["scores"][k] for k, v in zip(letters, lm)]
            offset = sum(diffs) / len(diffs)
            worst = max(worst, *map(abs, diffs))
            worst_offset = max(worst_offset, *(abs(d - offset) for d in diffs))
        n = len(bench)
        print(f"  {task[6:]:9s} {n:4d} items: ours {n / t_ours:7.1f} items/s | lm-eval {n / t_theirs:7.1f} items/s, "
              f"its scoring {n / t_scoring:7.1f} | ratio {t_theirs / t_ours:.2f}x, {t_scoring / t_ours:.2f}x on scoring "
              f"alone (target >= 1.5x); identical choices {same}/{n}; max |d loglik| {worst:.1e}, "
              f"{worst_offset:.1e} within an item (ours rounded to 1e-4)")
    trailing = sum(text != text.rstrip() for texts in prompts.values() for text in texts)
    if trailing:
        print(f"  {trailing} prompts end in whitespace (a chat template's final newline): lm-eval moves it into every "
              "continuation, adding the same log P(whitespace) to each option of an item, so only the "
              "within-item differences can match; the choice is unaffected")


# ------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--items", type=int, default=120)
    ap.add_argument("--model", default="sft", help="stage whose model is timed (base/dcpt/sft/dpo)")
    ap.add_argument("--model-dir", default="", help="any HF model directory instead of a stage")
    ap.add_argument("--chat", action="store_true", help="with --model-dir: prompt through its chat template")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--served", action="store_true", help="local vs served backend (transformers serve)")
    ap.add_argument("--lm-eval", action="store_true", help="our loglik vs lm-eval 0.4.13's hf backend")
    ap.add_argument("--lm-eval-venv", default=str(artifacts_root() / "bench" / "lm-eval-venv"))
    ap.add_argument("--skip-local", action="store_true", help="only the sections asked for with --served/--lm-eval")
    args = ap.parse_args()
    torch.manual_seed(0)

    cfg = load_config(args.profile)
    if args.model_dir:
        model = EvalModel("bench", str(Path(args.model_dir).resolve()), chat=args.chat)
    else:
        models = {m.name: m for m in stage_models(cfg)}
        if args.model not in models:
            raise SystemExit(f"stage {args.model!r} has no model yet (have {', '.join(models)}): run notebooks 01-04")
        model = models[args.model]
    scorer = scorer_for(cfg, model, progress=False)
    print(f"model {model.name} ({model.path}), batch {scorer.batch_size}, window {scorer.max_length}, "
          f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    if not args.skip_local:
        local_modes(cfg, scorer, args.items, args.repeat)
    if args.served:
        served_vs_local(cfg, model, scorer, args.items, args.repeat)
    if args.lm_eval:
        ours_vs_lm_eval(cfg, model, scorer, args.items, args.repeat, Path(args.lm_eval_venv))


if __name__ == "__main__":
    main()
