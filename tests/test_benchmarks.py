"""Benchmark prompts (DESIGN.md section 4) and loading the real sample files of ../shared/data."""

from __future__ import annotations

import json

import pytest

from qilin_lib.config import load_config
from qilin_lib.evaluation.benchmarks import (
    CEval,
    CMExam,
    Huatuo,
    PubMedQA,
    load_benchmark,
    pubmedqa_as_mcq,
)

ITEM = {"id": "1", "question": "糖尿病的常用药物是？", "options": {"A": "青霉素", "B": "二甲双胍"}, "answer": "B",
        "subject": "clinical_medicine"}


def test_cmexam_prompt_is_question_option_lines_answer_slot():
    assert CMExam("cmexam", [ITEM]).prompt(ITEM) == "糖尿病的常用药物是？\nA 青霉素\nB 二甲双胍\n答案："


def test_ceval_prompt_is_answer_only_five_shot():
    shots = [dict(ITEM, id=str(i), question=f"例题{i}", answer="A") for i in range(5)]
    prompt = CEval("ceval", [ITEM], shots={"clinical_medicine": shots}).prompt(ITEM)
    assert prompt.startswith("以下是中国关于临床医学考试的单项选择题，请选出其中的正确答案。\n\n例题0\nA. 青霉素\nB. 二甲双胍\n答案：A\n\n")
    assert prompt.count("答案：A\n\n") == 5
    assert prompt.endswith("糖尿病的常用药物是？\nA. 青霉素\nB. 二甲双胍\n答案：")


def test_huatuo_prompt_is_the_question():
    assert Huatuo("huatuo26m", []).prompt({"question": "头痛怎么办？"}) == "头痛怎么办？"


def test_pubmedqa_is_a_three_label_mcq():
    item = pubmedqa_as_mcq({"id": "9", "question": "Does X help?", "context": "Abstract.", "answer": "maybe"})
    assert item["answer"] == "C" and item["label"] == "maybe"
    bench = PubMedQA("pubmedqa", [item])
    assert bench.prompt(item) == "Context: Abstract.\nQuestion: Does X help?\nA yes\nB no\nC maybe\nAnswer:"
    parse = bench.parser_functions()["pubmedqa"]
    assert parse("Maybe, the data are mixed.", item["options"]) == "C" and parse("unclear", item["options"]) == ""


@pytest.fixture
def real_cfg(shared_data):
    cfg = load_config("paper")
    cfg.data.benchmarks = {
        "cmexam": str(shared_data / "cmexam" / "test_sample300_reconstructed.csv"),
        "ceval": str(shared_data / "ceval_medical"),
        "huatuo26m": str(shared_data / "huatuo26m_test" / "huatuo26M_test_sample500.json"),
        "pubmedqa": {"path": str(shared_data / "pubmedqa" / "pqal_trainval.json")},
    }
    return cfg


def test_real_samples_load(real_cfg):
    cmexam = load_benchmark(real_cfg, "cmexam")
    assert len(cmexam) == 300 and all(set(it["answer"]) <= set(it["options"]) for it in cmexam.items)
    ceval = load_benchmark(real_cfg, "ceval")
    assert {it["subject"] for it in ceval.items} == {"clinical_medicine", "physician", "basic_medicine"}
    assert all(len(ceval.shots[s]) == 5 for s in ceval.shots)
    assert "以下是中国关于医师资格考试" in ceval.prompt(next(it for it in ceval.items if it["subject"] == "physician"))
    assert len(load_benchmark(real_cfg, "huatuo26m")) == 500
    pubmed = load_benchmark(real_cfg, "pubmedqa", max_items=50)
    assert len(pubmed) == 50 and {it["label"] for it in pubmed.items} <= {"yes", "no", "maybe"}


def test_multi_answer_items_stay_letter_sets(real_cfg, shared_data):
    real_cfg.data.benchmarks["cmexam"] = str(shared_data / "cmexam" / "val_from_xlsx.csv")
    items = load_benchmark(real_cfg, "cmexam").items
    multi = [it for it in items if len(it["answer"]) > 1]
    assert multi and all(it["answer"] == "".join(sorted(set(it["answer"]))) for it in multi)


def test_pubmedqa_official_split_by_test_ids(real_cfg, shared_data, tmp_path):
    doc = json.loads((shared_data / "pubmedqa" / "pqal_trainval.json").read_text())
    test_ids = sorted(doc)[:10]
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({i: doc[i]["final_decision"] for i in test_ids}))
    real_cfg.data.benchmarks["pubmedqa"]["test_ids"] = str(tmp_path / "test_ground_truth.json")
    bench = load_benchmark(real_cfg, "pubmedqa")
    assert sorted(it["id"] for it in bench.items) == test_ids and len(bench.train) == len(doc) - 10


def test_unknown_benchmark_and_missing_spec_are_errors():
    cfg = load_config("paper")
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark(cfg, "mmlu")
    cfg.data.benchmarks = {}
    with pytest.raises(ValueError, match="data.benchmarks.cmexam"):
        load_benchmark(cfg, "cmexam")
