# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Evaluation: CMExam, C-Eval, Huatuo-26M, PubMedQA, with RAG, VoC and task adaptation
#
# Every stage that notebooks 01-04 produced (base, DCPT, SFT, DPO) on the profile's benchmarks, following
# the benchmarks' own protocols (DESIGN.md section 4; each choice is documented in `qilin_lib.evaluation`):
#
# - **CMExam**: question + `A xxx` options + `答案：`, greedy; letters read by the CMExam parser (a letter
#   counts wherever it occurs) with a strict parser and Qilin-Med's first-capital-run parser beside it;
#   accuracy and scikit-learn weighted F1; explanation BLEU (jieba) and ROUGE (characters).
# - **C-Eval** (clinical_medicine, physician, basic_medicine): 5-shot answer-only prompt, val split.
# - **Huatuo-26M**: greedy answers, BLEU-1..4 / GLEU / ROUGE / Distinct on characters.
# - **PubMedQA** (reasoning-required, when the profile has it): yes/no/maybe accuracy, macro-F1 as
#   PubMedQA's evaluation.py computes it, and macro-F1 over exactly yes/no/maybe.
# - Multiple choice in three scoring modes: `generate`, `loglik` (next-token letter) and `cloze` (option
#   text after the question: summed, per token, per character and calibrated).
# - **RAG** (our BM25 retriever; the paper's is unpublished) for the SFT and DPO models, and **VoC**
#   (our interpretation of AntGLM-Med's Verification-of-Choice) against direct answering.
# - **Task adaptation** (AntGLM-Med's third stage): a LoRA fine-tune of the SFT model on one benchmark's
#   training split, evaluated before and after.
# - **External checkpoints** (`evaluation.external_models`; one at a time: `qilin evaluate --model DIR|HUB_ID
#   [--adapter DIR] [--name LABEL]`): a model the repo did not train, scored on the benchmarks under its own
#   label. `tiny` scores a copy of its base model saved elsewhere (`base-copy`): its rows equal `base`'s.
#
# The stages are found through `results/<profile>/train_<stage>.json` (their artifact key); nothing here
# imports or runs training code except the task-adaptation launch below.
#
# On `tiny` the evaluation items ask about facts of the DCPT corpus in wordings no training text uses,
# beside *control* diseases that no training text mentions and a prior-only baseline (the question with
# the disease name removed): the tables measure knowledge injection, not string recall.
#
# Outputs: `results/<profile>/eval_<model>_<task>.json`, predictions under `results/<profile>/predictions/`,
# tables under `results/<profile>/tables/` (with the published numbers of `results/paper/reference.json`
# in rows of their own) and `figures/<profile>/eval_knowledge_*.png`.

# %% tags=["parameters"]
profile = "tiny"
overrides = {}
force = False
progress = True

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

from qilin_lib.config import load_config
from qilin_lib.evaluation.figures import plot_knowledge
from qilin_lib.evaluation.runner import evaluate_all, stage_models
from qilin_lib.evaluation.tables import caption, display_frame, eval_tables, write_eval_tables
from qilin_lib.train.adapt import adapt_after_sft

cfg = load_config(profile, overrides)
ec = cfg.evaluation
print(f"benchmarks {ec.benchmarks}, modes {ec.modes}, window {ec.max_length or 'model max'} tokens, "
      f"RAG for {ec.rag_models} (top {ec.rag_top_k}), VoC for {ec.voc_models}, adaptation on {ec.adapt_benchmark!r}")
pd.DataFrame([{"model": m.name, "chat template": m.chat, "path": m.path} for m in stage_models(cfg)]
             + [{"model": m.name, "chat template": m.chat, "path": m.path, "external": True}
                for m in ec.external_models])

# %% [markdown]
# ## Run every model on every task
#
# Cached training stages are reused. The task-adaptation adapter is trained first (or reused) by the same
# LoRA SFT code as notebook 03, through the same launcher: several visible GPUs mean several processes.

# %%
adapt_after_sft(profile, overrides, force=force, progress=progress)
results = evaluate_all(cfg, progress=progress)
print(f"{len(results)} result files written")

# %% [markdown]
# ## Tables
#
# Every table is computed from the result files just written. Rows marked `published` are the papers'
# numbers (with their source), never ours.

# %%
write_eval_tables(cfg.name)
for name, table in eval_tables(cfg.name).items():
    display(Markdown(f"**{name}**: {caption(name)}"))
    display(display_frame(table))  # value [95% interval]; the CSV keeps the bounds in columns of their own

# %% [markdown]
# ## Knowledge injection by stage
#
# Accuracy on taught vs control diseases in four scoring modes; the dashed line is chance.

# %%
for bench in ("cmexam", "ceval"):
    png = plot_knowledge(cfg.name, bench)
    if png:
        display(Image(filename=str(png)))
