"""A tiny random-weight model + tokenizer for the evaluation tests (built in seconds, no training)."""

from __future__ import annotations

from qilin_lib.config import ModelConfig
from qilin_lib.modeling import build_tiny_model, build_tiny_tokenizer

TEXTS = ["糖尿病的常用药物包括二甲双胍和胰岛素。", "肺炎的症状有咳嗽、发热。", "答案：A\n解析：略。",
         "A B C D E yes no maybe Context: Question: Answer:", "以下是中国关于临床医学考试的单项选择题，请选出其中的正确答案。",
         "判断：正确 错误", "高血压患者常有头痛、头晕。"] * 20


def tiny_model_and_tokenizer(max_positions: int = 256, seed: int = 0):
    tokenizer = build_tiny_tokenizer(TEXTS, vocab_size=400, model_max_length=max_positions)
    cfg = ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      max_position_embeddings=max_positions, attn_implementation="sdpa")
    return build_tiny_model(cfg, tokenizer, seed), tokenizer
