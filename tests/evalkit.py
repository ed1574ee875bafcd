"""For the evaluation tests: a tiny random-weight model + tokenizer (built in seconds, no training), and the
paper profile pointed at the real benchmark samples of ../shared/data."""

from __future__ import annotations

from qilin_lib.config import ModelConfig, load_config
from qilin_lib.modeling import build_tiny_model, build_tiny_tokenizer

TEXTS = ["糖尿病的常用药物包括二甲双胍和胰岛素。", "肺炎的症状有咳嗽、发热。", "答案：A\n解析：略。",
         "A B C D E yes no maybe Context: Question: Answer:", "以下是中国关于临床医学考试的单项选择题，请选出其中的正确答案。",
         "判断：正确 错误", "高血压患者常有头痛、头晕。"] * 20


def tiny_model_and_tokenizer(max_positions: int = 256, seed: int = 0):
    tokenizer = build_tiny_tokenizer(TEXTS, vocab_size=400, model_max_length=max_positions)
    cfg = ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      max_position_embeddings=max_positions, attn_implementation="sdpa")
    return build_tiny_model(cfg, tokenizer, seed), tokenizer


# Every registered benchmark's real sample in ../shared/data (a path, or a spec mapping); tests/test_benchmarks.py
# fails for a benchmark registered without one here.
SAMPLES = {
    "cmexam": "cmexam/test_10_official.csv",
    "ceval": "ceval_medical",
    "huatuo26m": "huatuo26m_test/huatuo26M_test_sample500.json",
    "pubmedqa": {"path": "pubmedqa/pqal_trainval.json"},
    "medqa_mcmle": "medqa_mainland_test/test_sample300.json",
    "cnmle": "cnmleqa/CNMLEQA-3k_sample300.json",
}


def sample_cfg(shared_data, max_items: int, **evaluation):
    """The paper profile on SAMPLES with the tiny model's loading settings (float32, no remote code) and
    small evaluation sizes; `evaluation` overrides more of its settings."""
    cfg = load_config("paper", {"evaluation": {"max_items": max_items, "batch_size": 4, "max_new_tokens_mcq": 4,
                                                "max_new_tokens_qa": 6, "max_length": 256, **evaluation}})
    cfg.model = ModelConfig()
    cfg.data.benchmarks = {name: {"path": str(shared_data / s["path"])} if isinstance(s, dict) else str(shared_data / s)
                           for name, s in SAMPLES.items()}
    return cfg
