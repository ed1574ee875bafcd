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
# # 06 · Case studies: the same questions through every stage
#
# The paper's Figures 2-3 show one dialogue question and one exam question answered by Baichuan-7B and by
# Qilin-Med after each stage. Here the same is done for every stage this run produced (base, DCPT, SFT,
# DPO), on the first questions of each group of the dialogue set and of the exam set (`tiny`: diseases
# the DCPT corpus taught and control diseases no training text mentions). Answers are greedy, in the
# prompt format notebook 05 scores; the score column says whether the CMExam parser read the right
# letters (exam) and the character ROUGE-1 against the reference answer (dialogue).
#
# Outputs: `results/<profile>/case_studies.json`, `results/<profile>/tables/case_studies.*` and
# `figures/<profile>/case_studies.png`.

# %% tags=["parameters"]
profile = "tiny"
overrides = {}
force = False
progress = True
per_group = 2
max_new_tokens = 48

# %%
import pandas as pd
from IPython.display import Image, display

from qilin_lib.config import load_config
from qilin_lib.evaluation.cases import case_studies, plot_cases, side_by_side
from qilin_lib.paths import tables_dir
from qilin_lib.reporting import write_table

cfg = load_config(profile, overrides)
rows = case_studies(cfg, per_group=per_group, max_new_tokens=max_new_tokens)
table = side_by_side(rows)
write_table(table, tables_dir(cfg.name), "case_studies", "Case studies: the same questions answered by every stage")
pd.set_option("display.max_colwidth", 80)
table

# %% [markdown]
# ## Scores per case and stage

# %%
display(pd.DataFrame(rows).pivot(index="case", columns="model", values="score"))
display(Image(filename=str(plot_cases(rows, cfg.name))))
