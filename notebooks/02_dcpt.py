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
# # 02 · DCPT: domain continued pre-training
#
# The first training stage of Qilin-Med (arXiv 2310.09089): next-token prediction on **ChiMed-CPT**,
# the documents packed into blocks of `dcpt.block_size` tokens with EOS between documents (1024 in the
# paper; 3 epochs, lr 2e-4, warmup 0.05, weight decay 0.01, full-parameter, 8xA100).
#
# - `tiny` continues pre-training the repo's untrained ~3.5M-parameter Llama on the corpus notebook 01
#   generated from the knowledge base, with a budget in steps sized so that every taught fact is seen
#   about 50 times or more; the held-out probe statements then show the knowledge arriving: perplexity
#   on taught diseases falls far below that on control diseases that no training text mentions.
# - `gpu-small` trains a LoRA adapter (merged into the weights afterwards), `paper` the full model.
#
# Outputs: the model directory in the artifact cache (the input of notebook 03),
# `results/<profile>/train_dcpt.json` and `figures/<profile>/loss_dcpt.png`.

# %% tags=["parameters"]
profile = "tiny"
overrides = {}
force = False
progress = True

# %%
from IPython.display import Image, display

from qilin_lib.config import load_config
from qilin_lib.paths import figures_dir
from qilin_lib.train.launch import run_or_launch

cfg = load_config(profile, overrides)
sc = cfg.dcpt
print(f"lr {sc.learning_rate} ({sc.lr_scheduler}), batch {sc.per_device_batch_size} x {sc.block_size} tokens, "
      f"epochs {sc.epochs}, max_steps {sc.max_steps}, LoRA {sc.lora.enabled}")

# %% [markdown]
# ## Train (or reuse) the DCPT model
#
# In this process on one device; with several visible GPUs, one process per GPU through `accelerate launch`
# (DeepSpeed ZeRO-2 on `paper`), the same launcher as notebooks 03 and 04.

# %%
run = run_or_launch("dcpt", profile, overrides, force=force, progress=progress)
m = run.metrics
print(f"model: {run.path} ({'reused from cache' if run.reused else 'trained now'})")
print(f"steps {m['global_steps']}, epochs {m['epochs_trained']}, loss {m['first_loss']:.3f} -> {m['final_loss']:.3f}")
print(f"tokens trained {m['tokens_trained']:,} at {m['tokens_per_second']:,.0f} tokens/s; "
      f"real tokens in the packed batches {m['packing_efficiency']:.4f} "
      f"(one document per row would give {m['packing']['padded_efficiency']:.3f})")
print(f"parameters: {m['trainable_parameters']:,} trainable of {m['total_parameters']:,}")
print(f"data {m['data_hash']}, base model {m['base_model_hash']}")

# %% [markdown]
# ## Did DCPT inject knowledge?
#
# A first sanity check (the full evaluation is notebook 05): perplexity on held-out statements about
# taught and control diseases, in wordings that no training text uses, before and after DCPT; over the
# stated facts only (the field's values after the disease name) and over the whole statement. The whole
# statement includes template characters that no training text contains, whose probability training
# drives down: that number rises for both groups, and only the gap between them carries knowledge.

# %%
if "probe_perplexity" in m:
    for scope in ("facts", "text"):
        for when in ("before", "after"):
            groups = m["probe_perplexity"][when][scope]
            print(f"{scope:>5} {when:>6}: " + ", ".join(f"{g} {ppl:,.1f}" for g, ppl in groups.items()))
if "exposures_per_fact" in m:
    e = m["exposures_per_fact"]
    print(f"exposures per taught fact: {e['per_epoch']['mean']} per epoch (min {e['per_epoch']['min']}) "
          f"x {e['epochs']} epochs = {e['total_mean']} (min {e['total_min']})")

# %% [markdown]
# ## Loss curve

# %%
display(Image(filename=str(figures_dir(cfg.name) / "loss_dcpt.png")))
