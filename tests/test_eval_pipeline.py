"""End to end: a tiny random model through every benchmark on the real sample files (../shared/data),
every scoring mode and VoC; result files, predictions and the paper-shaped tables they feed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from evalkit import sample_cfg, tiny_model_and_tokenizer

from qilin_lib.evaluation.results import load_results
from qilin_lib.evaluation.runner import EvalModel, evaluate_model
from qilin_lib.evaluation.tables import (
    Results,
    eval_tables,
    knowledge_table,
    write_eval_tables,
)

N = 6


@pytest.fixture
def model_dir(tmp_path):
    model, tokenizer = tiny_model_and_tokenizer()
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def real_cfg(shared_data: Path):
    return sample_cfg(shared_data, N)


def test_every_benchmark_runs_end_to_end_on_real_samples(shared_data, sandbox, model_dir):
    cfg = real_cfg(shared_data)
    model = EvalModel("sft", str(model_dir), chat=True)
    results = evaluate_model(cfg, model, ["cmexam", "ceval", "huatuo26m", "pubmedqa"], progress=False, voc=True)
    tasks = {r["task"] for r in results}
    assert tasks == {"cmexam", "ceval", "huatuo26m", "pubmedqa", "cmexam_voc", "ceval_voc", "pubmedqa_voc"}
    by_task = {r["task"]: r for r in results}
    cmexam = by_task["cmexam"]["metrics"]
    assert set(cmexam) >= {"generate", "loglik", "cloze_sum", "cloze_token", "cloze_char", "cloze_calibrated"}
    assert set(cmexam["generate"]) == {"cmexam", "strict", "first_run"}
    assert all(0 <= cmexam[m]["accuracy"] <= 100 and cmexam[m]["n"] == N for m in ("loglik", "cloze_sum"))
    assert "bleu_4" in cmexam["generate_explanation"]           # the official test file has explanations
    assert set(by_task["ceval"]["metrics"]["loglik"]["by_subject"]) <= {"clinical_medicine", "physician", "basic_medicine"}
    assert set(by_task["ceval"]["metrics"]["generate"]) == {"ceval", "ceval_qilin", "cmexam"}
    assert {"macro_f1", "macro_f1_fixed_labels"} <= set(by_task["pubmedqa"]["metrics"]["generate"]["pubmedqa"])
    assert set(by_task["huatuo26m"]["metrics"]["generate"]) >= {"bleu_1", "gleu", "rouge_l", "distinct_2"}
    # every metric with its 95% interval beside it, and the method in the protocol
    for block in (cmexam["loglik"], cmexam["generate"]["cmexam"], cmexam["generate_explanation"],
                  by_task["huatuo26m"]["metrics"]["generate"], by_task["pubmedqa"]["metrics"]["loglik"],
                  by_task["ceval"]["metrics"]["loglik"]["by_subject"][next(iter(by_task["ceval"]["metrics"]["loglik"]["by_subject"]))]):
        metrics = [k for k, v in block.items() if isinstance(v, float)]
        assert metrics and all(block[f"{k}_ci95"][0] <= block[k] <= block[f"{k}_ci95"][1] for k in metrics), block
    assert by_task["cmexam"]["protocol"]["intervals"]["resamples"] == cfg.evaluation.bootstrap_resamples
    # one prediction row per item and mode, with the prompt protocol recorded beside the numbers
    lines = (sandbox / "results" / "paper" / "predictions" / "sft_cmexam.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == N * 6 and {json.loads(x)["mode"] for x in lines} >= {"generate", "loglik"}
    assert by_task["cmexam"]["protocol"]["prompt_example"].endswith("答案：")
    assert len(load_results("paper")) == len(results)

    write_eval_tables("paper")
    tables = eval_tables("paper")
    assert {"eval_cmexam", "eval_ceval", "eval_huatuo26m", "eval_pubmedqa", "eval_voc"} <= set(tables)
    cm = tables["eval_cmexam"]
    assert (cm["kind"] == "published").sum() >= 10 and (cm["kind"] == "ours (paper)").sum() == 1
    ours = cm[cm["kind"] == "ours (paper)"].iloc[0]
    assert ours["accuracy"] == round(cmexam["generate"]["cmexam"]["accuracy"], 1)
    assert ours["accuracy ci95_lo"] <= ours["accuracy"] <= ours["accuracy ci95_hi"]
    md = (sandbox / "results" / "paper" / "tables" / "eval_cmexam.md").read_text("utf-8")
    assert f"{ours['accuracy']:.1f} [{ours['accuracy ci95_lo']:.1f}, {ours['accuracy ci95_hi']:.1f}]" in md
    # a published row has no interval and no loglik column: empty cells, never "nan"
    assert cm["accuracy (loglik)"].isna().any() and not re.search(r"\|\s*nan\s*\|", md)
    pq = list(tables["eval_pubmedqa"].columns)   # the official macro-F1 first, the fixed-label one beside it
    assert pq.index("macro_f1 (generate)") < pq.index("macro_f1_fixed_labels (generate)")


def _planted(sandbox: Path, model: str, task: str, metrics: dict) -> None:
    out = sandbox / "results" / "tiny"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"eval_{model}_{task}.json").write_text(json.dumps(
        {"model": model, "task": task, "metrics": metrics, "protocol": {"parsers": ["cmexam"]}}))


def test_knowledge_table_puts_taught_control_and_prior_rows_side_by_side(sandbox):
    def mode(taught, control):
        return {"accuracy": (taught + control) / 2, "by_group": {"taught": {"accuracy": taught, "n": 3},
                                                                 "control": {"accuracy": control, "n": 1}}}
    for model, taught in (("base", 20.0), ("dcpt", 40.0)):
        _planted(sandbox, model, "cmexam", {"generate": {"cmexam": mode(taught, 20.0)},
                                            **{m: mode(taught + 5, 21.0) for m in ("loglik", "cloze_sum", "cloze_token",
                                                                                   "cloze_char", "cloze_calibrated")}})
        _planted(sandbox, model, "cmexam_prior", {m: {"accuracy": 19.0, "n": 4} for m in
                                                  ("cloze_sum", "cloze_token", "cloze_char", "cloze_calibrated")})
    table = knowledge_table(Results("tiny"), "cmexam")
    assert list(table["model"]) == ["base", "base", "base", "dcpt", "dcpt", "dcpt"]
    dcpt_taught = table[(table["model"] == "dcpt") & (table["items"] == "taught")].iloc[0]
    assert dcpt_taught["generate"] == 40.0 and dcpt_taught["cloze_calibrated"] == 45.0
    assert table[table["items"].str.startswith("prior")]["cloze_sum"].tolist() == [19.0, 19.0]
