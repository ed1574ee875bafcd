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
# # 01 · Data: from medical sources to ChiMed-style corpora
#
# The first stage of Qilin-Med (arXiv 2310.09089, section 3): build **ChiMed-CPT** (QA, plain text,
# knowledge-graph and dialogue subsets), **ChiMed-SFT** (general + medical, single- and multi-turn) and
# **ChiMed-DPO** (prompt / chosen / rejected), deduplicated following Lee et al. 2022 (exact + MinHash
# LSH near-duplicates on character 5-grams), plus the evaluation sets the later notebooks score.
#
# - `tiny` generates everything from the repo's own knowledge base (about 100 diseases, split into
#   diseases the DCPT corpus teaches, diseases used for SFT items, and controls no training text mentions).
# - `paper` / `gpu-small` read the released ChiMed files (`williamliu/ChiMed`) through the hub.
#
# Outputs: HF datasets in the artifact cache, `results/<profile>/data_stats.json`, the tables in
# `results/<profile>/tables/` and `figures/<profile>/data_composition.png`.

# %% tags=["parameters"]
profile = "tiny"
overrides = {}
force = False
progress = True

# %%
from IPython.display import Image, display

from qilin_lib.config import load_config
from qilin_lib.data.stage import run_data_stage
from qilin_lib.data.tables import composition_figure, write_data_tables

cfg = load_config(profile, overrides)

# %% [markdown]
# ## Build (or reuse) the corpora

# %%
result = run_data_stage(cfg, force=force, progress=progress)
print(f"artifact: {result.path} ({'reused from cache' if result.reused else 'built now'})")
for corpus, stats in result.stats["corpora"].items():
    print(f"ChiMed-{corpus.upper():4s} {stats['records']:>8,d} records {stats['chars']:>12,d} chars")

# %% [markdown]
# ## Tables 1-3 (paper shape), per-source counts, evaluation sets

# %%
tables = write_data_tables(result.stats, cfg.name)
for name, frame in tables.items():
    print(f"\n== {name}")
    print(frame.to_string(index=False))

# %% [markdown]
# ## Composition

# %%
display(Image(filename=str(composition_figure(result.stats, cfg.name))))
