"""CNMLE: Chinese National Medical Licensing Exam questions (zonghui0228/CNMLEQA, CNMLEQA-3k: 2,949 items,
5 options, 2017-2021), with each item's question type (案例分析 / 知识问答) as its subject.

No LLM prompt of its own: CMExam's layout and parser (ours, said in the caption); accuracy and weighted F1
overall and per question type. Not in the Qilin-Med or AntGLM-Med tables: no published rows.
"""

from __future__ import annotations

from .base import Benchmark


class CNMLE(Benchmark):
    name = "cnmle"
    loader = "cnmleqa_json"
    by_subject = True                                   # per question type
    caption = ("CNMLE (CNMLEQA-3k, 5 options): accuracy and weighted F1 of generate (CMExam parser) and loglik "
               "accuracy; prompt in CMExam's layout (ours: the dataset defines no LLM prompt)")
