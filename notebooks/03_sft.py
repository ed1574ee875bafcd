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
# # 03 · SFT: LoRA instruction tuning of the DCPT model
#
# The second stage of Qilin-Med (arXiv 2310.09089): supervised fine-tuning on **ChiMed-SFT** (general and
# medical, single- and multi-turn conversations) with LoRA (r 8, alpha 32, dropout 0.05), starting from the
# DCPT model of notebook 02. The loss covers the assistant's tokens only, in every turn of a conversation;
# user turns are cut to `max_source_length` tokens and answers to `max_target_length` (256 / 256 in the
# paper), following the authors' code base (the rule is spelled out in `qilin_lib.train.sft`).
#
# A check that matters on the `tiny` profile: SFT must not destroy what DCPT taught. The per-token loss on
# held-out statements about taught diseases (wordings no training text uses) is measured before and after.
#
# Outputs: the merged SFT model (and its LoRA adapter) in the artifact cache, `results/<profile>/train_sft.json`,
# `figures/<profile>/loss_sft.png` and `figures/<profile>/sft_summary.png`.

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
from qilin_lib.train.launch import run_or_launch
from qilin_lib.train.sft import generate_answers, plot_summary

cfg = load_config(profile, overrides)
sc = cfg.sft
print(f"LoRA r {sc.lora.r} alpha {sc.lora.alpha} dropout {sc.lora.dropout} on {sc.lora.target_modules}; "
      f"lr {sc.learning_rate} ({sc.lr_scheduler}), {sc.epochs} epochs, batch {sc.per_device_batch_size}, "
      f"source/target {sc.max_source_length}/{sc.max_target_length} tokens")

# %% [markdown]
# ## Train (or reuse) the adapter
#
# In-process on one device (the DCPT model comes from the cache); through `accelerate launch` when
# several GPUs are visible.

# %%
run = run_or_launch("sft", profile, overrides, force=force, progress=progress)
m = run.metrics
print(f"artifact: {run.path} ({'reused from cache' if run.reused else 'trained now'})")
pd.DataFrame([{
    "examples": m["train_examples"], "steps": m["global_steps"], "first loss": round(m["first_loss"], 3),
    "final loss": round(m["final_loss"], 3), "trainable params": f"{m['trainable_params']:,}",
    "total params": f"{m['total_params']:,}", "tokens/s": m["tokens_per_second"],
    "train s": m["train_runtime_s"],
}])

# %% [markdown]
# ## Did SFT keep the DCPT knowledge?
#
# Perplexity of the data stage's held-out probe statements before (the DCPT model) and after SFT, computed
# as notebook 02 does: over the stated facts only and over whole statements, for `taught` diseases (in the
# DCPT corpus) and `control` diseases (in no training text). Knowledge is kept when the taught facts stay
# far less surprising than the control facts; SFT must not blow them up.

# %%
if m.get("probe_perplexity"):
    p = m["probe_perplexity"]
    display(pd.DataFrame([{"scope": scope, "group": g, "before SFT": p["before"][scope][g],
                           "after SFT": p["after"][scope][g]}
                          for scope in p["before"] for g in p["before"][scope]]))
display(Image(filename=str(plot_summary(m, cfg.name))))

# %% [markdown]
# ## Answers, DCPT model vs SFT model (greedy)
#
# Three questions from the SFT set and one general instruction.

# %%
questions = [conv["messages"][0]["content"] for conv in load_corpus(cfg, "sft").select(range(3))]
questions.append("请计算12加30。")
before = generate_answers(m["base_model"], questions, cfg)
after = generate_answers(run.path, questions, cfg)
pd.DataFrame({"question": questions, "DCPT": before, "SFT": after})
