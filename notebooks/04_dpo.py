# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · DPO: preference alignment with LoRA
#
# The third stage of Qilin-Med (arXiv 2310.09089): Direct Preference Optimization (Rafailov et al. 2023) on
# **ChiMed-DPO** (prompt / chosen / rejected). As in the authors' scripts, the SFT adapter is merged into the
# CPT model first (notebook 03's artifact holds that merged model) and a new LoRA adapter (r 8, alpha 16,
# dropout 0.05) is trained with beta 0.1. The reference policy is the merged SFT model itself: TRL computes
# its log-probabilities with the adapter disabled.
#
# Measured: TRL's `rewards/margins` and `rewards/accuracies` while training, and, before and after DPO, how
# often the model prefers the chosen answer on the training pairs and on held-out pairs (other diseases,
# prompt wordings no training pair uses), together with the beta-scaled implicit-reward margin.
#
# Outputs: the merged DPO model (and its adapter) in the artifact cache, `results/<profile>/train_dpo.json`,
# `figures/<profile>/loss_dpo.png` and `figures/<profile>/dpo_summary.png`.

# %% tags=["parameters"]
profile = "tiny"
overrides = {}
force = False
progress = True

# %%
import pandas as pd
from IPython.display import Image, display

from qilin_lib.config import load_config
from qilin_lib.data.stage import load_corpus
from qilin_lib.train.dpo import plot_summary
from qilin_lib.train.launch import run_or_launch
from qilin_lib.train.sft import generate_answers

cfg = load_config(profile, overrides)
dc = cfg.dpo
print(f"LoRA r {dc.lora.r} alpha {dc.lora.alpha} dropout {dc.lora.dropout}; beta {dc.beta}; lr {dc.learning_rate} "
      f"({dc.lr_scheduler}), {dc.epochs} epochs, batch {dc.per_device_batch_size}, "
      f"prompt/answer {dc.max_source_length}/{dc.max_target_length} tokens")

# %% [markdown]
# ## Train (or reuse) the adapter

# %%
run = run_or_launch("dpo", profile, overrides, force=force, progress=progress)
m = run.metrics
print(f"artifact: {run.path} ({'reused from cache' if run.reused else 'trained now'})")
pd.DataFrame([{
    "pairs": m["train_pairs"], "steps": m["global_steps"], "first loss": round(m["first_loss"], 3),
    "final loss": round(m["final_loss"], 3), "rewards/margins (last log)": m["final_rewards/margins"],
    "rewards/accuracies (last log)": m["final_rewards/accuracies"], "trainable params": f"{m['trainable_params']:,}",
    "tokens/s": m["tokens_per_second"], "train s": m["train_runtime_s"],
}])

# %% [markdown]
# ## Chosen vs rejected, before and after DPO
#
# `logp_*`: the policy's own preference (summed / per-token log-probability of the answer).
# `reward_*`: the DPO implicit reward beta * (log pi - log pi_ref); before DPO the policy is the reference,
# so these are 0 by construction. Below it, notebook 02's probe perplexities before and after DPO: the
# preference step must not erase the injected knowledge either.

# %%
rows = []
for name, ev in (("training pairs", m["train_pairs_eval"]), ("held-out pairs", m.get("heldout"))):
    if ev:
        rows += [{"set": name, "when": when, **ev[when]} for when in ("before", "after")]
display(pd.DataFrame(rows).set_index(["set", "when"]))
if m.get("probe_perplexity"):  # the DCPT knowledge after DPO (notebook 02's probe statements)
    p = m["probe_perplexity"]
    display(pd.DataFrame([{"scope": scope, "group": g, "before DPO": p["before"][scope][g],
                           "after DPO": p["after"][scope][g]} for scope in p["before"] for g in p["before"][scope]]))
display(Image(filename=str(plot_summary(m, cfg.name))))

# %% [markdown]
# ## Answers to held-out prompts, SFT model vs DPO model (greedy)
#
# The tiny profile has held-out pairs (other diseases, other wordings); a ChiMed run has none, and shows
# four of its training prompts instead.

# %%
try:
    examples = load_corpus(cfg, "eval/dpo_heldout")
except FileNotFoundError:
    examples = load_corpus(cfg, "dpo")
examples = examples.select(range(min(4, len(examples))))
questions = list(examples["prompt"])
pd.DataFrame({"question": questions, "chosen (reference)": examples["chosen"],
              "SFT": generate_answers(m["sft_model"], questions, cfg),
              "DPO": generate_answers(run.path, questions, cfg)})
