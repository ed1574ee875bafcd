"""MedQA Mainland China (MCMLE) test set (jind11/MedQA, 4-option variant; 3,426 questions).

MedQA defines no LLM prompt (its baselines are retrieval + reading models), so the prompt is CMExam's layout
for a Chinese licensing-exam question (ours, said in the caption); CMExam's parser and metrics. Source: the
Alpaca conversion whose options carry no letters (qilin_lib.data.sources.exam_json: letters by position).
Not in the Qilin-Med or AntGLM-Med tables: no published rows.
"""

from __future__ import annotations

from .base import Benchmark


class MedQAMCMLE(Benchmark):
    name = "medqa_mcmle"
    loader = "medqa_alpaca_json"
    caption = ("MedQA-MCMLE (Mainland China licensing exam, test, 4 options): accuracy and weighted F1 of generate "
               "(CMExam parser) and loglik accuracy; prompt in CMExam's layout (ours: MedQA defines no LLM prompt)")
