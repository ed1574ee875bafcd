"""Benchmark prompts (DESIGN.md section 4) and loading the real sample files of ../shared/data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from evalkit import SAMPLES, sample_cfg, tiny_model_and_tokenizer

from qilin_lib.config import load_config
from qilin_lib.data.chimed import mcq_prompt
from qilin_lib.evaluation import benchmarks
from qilin_lib.evaluation.benchmarks import (
    BENCHMARKS,
    REGISTRY,
    Benchmark,
    available,
    load_benchmark,
    pubmedqa_as_mcq,
)
from qilin_lib.evaluation.benchmarks.ceval import CEval
from qilin_lib.evaluation.benchmarks.cmexam import CMExam
from qilin_lib.evaluation.benchmarks.huatuo26m import Huatuo26M
from qilin_lib.evaluation.benchmarks.pubmedqa import PubMedQA
from qilin_lib.evaluation.intervals import IntervalSpec
from qilin_lib.evaluation.results import Results
from qilin_lib.evaluation.runner import EvalModel, evaluate_model
from qilin_lib.evaluation.tables import eval_tables, write_eval_tables

ITEM = {"id": "1", "question": "糖尿病的常用药物是？", "options": {"A": "青霉素", "B": "二甲双胍"}, "answer": "B",
        "subject": "clinical_medicine"}


def test_cmexam_prompt_is_question_option_lines_answer_slot():
    assert CMExam([ITEM]).prompt(ITEM) == "糖尿病的常用药物是？\nA 青霉素\nB 二甲双胍\n答案："


def test_ceval_prompt_is_answer_only_five_shot():
    shots = [dict(ITEM, id=str(i), question=f"例题{i}", answer="A") for i in range(5)]
    prompt = CEval([ITEM], shots={"clinical_medicine": shots}).prompt(ITEM)
    assert prompt.startswith("以下是中国关于临床医学考试的单项选择题，请选出其中的正确答案。\n\n例题0\nA. 青霉素\nB. 二甲双胍\n答案：A\n\n")
    assert prompt.count("答案：A\n\n") == 5
    assert prompt.endswith("糖尿病的常用药物是？\nA. 青霉素\nB. 二甲双胍\n答案：")


def test_huatuo_prompt_is_the_question():
    assert Huatuo26M([]).prompt({"question": "头痛怎么办？"}) == "头痛怎么办？"


def test_pubmedqa_is_a_three_label_mcq():
    item = pubmedqa_as_mcq({"id": "9", "question": "Does X help?", "context": "Abstract.", "answer": "maybe"})
    assert item["answer"] == "C" and item["label"] == "maybe"
    bench = PubMedQA([item])
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


def test_medqa_mcmle_letters_come_from_option_order(real_cfg, shared_data):
    real_cfg.data.benchmarks["medqa_mcmle"] = str(shared_data / "medqa_mainland_test" / "test_sample300.json")
    bench = load_benchmark(real_cfg, "medqa_mcmle")
    raw = json.loads((shared_data / "medqa_mainland_test" / "test_sample300.json").read_text("utf-8"))
    assert len(bench) == len(raw) == 300
    first = bench.items[0]
    assert list(first["options"]) == ["A", "B", "C", "D"] and first["options"][first["answer"]] == raw[0]["output"]
    assert bench.prompt(first) == mcq_prompt(first) + "\n答案："      # CMExam's layout, said in the caption


def test_cnmle_answers_are_field_names_and_question_types_are_subjects(real_cfg, shared_data):
    real_cfg.data.benchmarks["cnmle"] = str(shared_data / "cnmleqa" / "CNMLEQA-3k_sample300.json")
    bench = load_benchmark(real_cfg, "cnmle")
    raw = json.loads((shared_data / "cnmleqa" / "CNMLEQA-3k_sample300.json").read_text("utf-8"))
    assert [it["answer"] for it in bench.items[:3]] == [r["answer"][-1].upper() for r in raw[:3]]
    assert {it["subject"] for it in bench.items} == {"案例分析", "知识问答"}
    rows = [{"answer": it["answer"], "pred": "A"} for it in bench.items]
    metrics = bench.score(rows, IntervalSpec(resamples=50))
    assert set(metrics["by_subject"]) == {"案例分析", "知识问答"}
    assert "by_subject" not in bench.score(rows, IntervalSpec(resamples=50), breakdown=False)


# ------------------------------------------------------------------------------- the plug-in contract
N = 4


def _sample_cfg(shared_data, **benchmarks):
    cfg = sample_cfg(shared_data, N, modes=["generate", "loglik"])
    cfg.data.benchmarks |= benchmarks
    return cfg


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model, tokenizer = tiny_model_and_tokenizer()
    path = tmp_path_factory.mktemp("bench") / "m"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_every_registered_benchmark_has_a_sample_a_caption_and_a_loader_of_its_kind():
    from qilin_lib.data.sources import LOADER_KINDS

    assert set(SAMPLES) == set(BENCHMARKS) == {cls.name for cls in REGISTRY}
    assert all(cls.caption and cls.kind in ("mcq", "qa") for cls in REGISTRY)
    assert all(LOADER_KINDS[cls.loader] == cls.kind for cls in REGISTRY if cls.loader)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_registered_benchmark_runs_end_to_end_into_its_table(name, shared_data, sandbox, model_dir):
    cfg = _sample_cfg(shared_data)
    bench = load_benchmark(cfg, name, N)
    result, = evaluate_model(cfg, EvalModel("sft", model_dir, chat=True), [bench], progress=False)
    assert result["benchmark"] == name and result["n_items"] == N
    assert result["protocol"]["prompt_example"] == bench.prompt(bench.items[0])
    metrics = result["metrics"]
    if bench.kind == "mcq":
        assert set(metrics["generate"]) == set(bench.parsers)
        assert 0 <= metrics["loglik"]["accuracy"] <= 100 and metrics["loglik"]["n"] == N
        assert len(metrics["loglik"]["accuracy_ci95"]) == 2
    else:
        assert math.isfinite(metrics["generate"]["bleu_1"]) and "bleu_1_ci95" in metrics["generate"]
    table = BENCHMARKS[name].table(Results(cfg.name))
    ours = table[table["model"] == "sft"]
    assert len(ours) == 1
    numbers = [v for v in ours.iloc[0] if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert f"eval_{name}" in eval_tables(cfg.name)


class ToyExam(Benchmark):
    """A benchmark written as a user would: one class, registered; everything else is the defaults."""
    name = "toy_exam"
    caption = "Toy exam: accuracy and weighted F1"

    @classmethod
    def from_spec(cls, spec: dict) -> ToyExam:
        return cls(json.loads(Path(spec["path"]).read_text("utf-8")))


def test_a_new_benchmark_is_one_class_in_the_registry(shared_data, sandbox, model_dir, monkeypatch):
    items = [{"id": str(i), "question": f"问题{i}", "options": {"A": "甲", "B": "乙"}, "answer": "AB"[i % 2]}
             for i in range(N)]
    (sandbox / "toy.json").write_text(json.dumps(items, ensure_ascii=False), "utf-8")
    monkeypatch.setattr(benchmarks, "REGISTRY", (*benchmarks.REGISTRY, ToyExam))
    monkeypatch.setitem(benchmarks.BENCHMARKS, "toy_exam", ToyExam)
    load_config("paper", {"evaluation": {"benchmarks": ["toy_exam"]}})  # the name validates as a benchmark
    cfg = _sample_cfg(shared_data, toy_exam=str(sandbox / "toy.json"))
    assert "toy_exam" in available(cfg)
    evaluate_model(cfg, EvalModel("sft", model_dir, chat=True), ["toy_exam"], progress=False)
    written = write_eval_tables(cfg.name)
    assert "eval_toy_exam" in written
    assert "Toy exam: accuracy and weighted F1" in Path(written["eval_toy_exam"]["md"]).read_text("utf-8")


def test_the_tiny_profile_runs_the_sets_its_data_stage_generates():
    assert available(load_config("tiny")) == ["cmexam", "ceval", "huatuo26m"]
