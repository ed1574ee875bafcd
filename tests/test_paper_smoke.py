"""The paper profile end to end at CPU size: `qilin smoke-inputs && qilin reproduce --profile paper-smoke`.

paper-smoke (`extends: paper`) keeps every code path of the paper run and shrinks sizes only: a random
Baichuan-format checkpoint written with Baichuan-7B's own modeling code, converted by the model step; the
ChiMed release layout through the paper's loaders; the real benchmark samples through the benchmark
classes; the baichuan-chat template; DCPT, SFT, DPO and task adaptation through the launcher. Needs
../shared (reference code and samples) and skips without it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest

from qilin_lib import notebooks
from qilin_lib.cli import main
from qilin_lib.config import TRAINING_STAGES as STAGES
from qilin_lib.config import load_config

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ("cmexam", "ceval", "huatuo26m", "pubmedqa")


def test_paper_smoke_differs_from_paper_in_sizes_and_inputs_only():
    """The list the README gives: anything else that differs from `paper` fails here."""
    paper, smoke = load_config("paper"), load_config("paper-smoke")
    sizes = {"max_steps", "block_size", "per_device_batch_size", "max_source_length", "max_target_length",
             "logging_steps", "save_steps"}
    for stage in STAGES:
        assert changed(getattr(paper, stage), getattr(smoke, stage)) <= sizes, stage
    assert changed(paper.model, smoke.model) == {"name_or_path", "max_probe_perplexity"}
    assert changed(paper.evaluation, smoke.evaluation) <= {
        "max_items", "batch_size", "max_length", "max_new_tokens_mcq", "max_new_tokens_qa"}
    assert [s["loader"] for s in smoke.data.sources] == [s["loader"] for s in paper.data.sources]
    assert (smoke.data.errors, smoke.data.dedup, smoke.seed) == (paper.data.errors, paper.data.dedup, paper.seed)
    assert changed(paper.hardware, smoke.hardware) == {"cpu_processes"}  # 2 CPU workers: ZeRO-2 over gloo
    assert smoke.model.convert == "baichuan" and smoke.model.chat_template == "baichuan-chat"


def changed(a, b) -> set[str]:
    a, b = dataclasses.asdict(a), dataclasses.asdict(b)
    return {key for key in a if a[key] != b[key]}


@pytest.fixture
def smoke_sandbox(sandbox, shared_data, monkeypatch):
    reference = shared_data.parent / "models" / "baichuan7b_reference"
    if not reference.is_dir():
        pytest.skip(f"{reference} (Baichuan-7B reference code) is absent on this machine")
    monkeypatch.setenv("QILIN_SHARED", str(shared_data.parent))
    (sandbox / "notebooks").mkdir()
    for source in sorted((REPO / "notebooks").glob("0*.py")):
        shutil.copy(source, sandbox / "notebooks")
    notebooks.sync(sandbox / "notebooks")
    return sandbox


@pytest.mark.slow
def test_qilin_reproduce_runs_the_paper_profile_at_cpu_size(smoke_sandbox):
    assert main(["reproduce", "--profile", "paper-smoke", "--only", "01,02"]) == 1  # no inputs yet: a clear stop
    executed = (smoke_sandbox / "results" / "paper-smoke" / "notebooks" / "02_dcpt.ipynb").read_text("utf-8")
    assert "qilin smoke-inputs" in executed
    assert main(["smoke-inputs"]) == 0
    checkpoint = smoke_sandbox / "artifacts" / "paper-smoke" / "inputs" / "baichuan-7b-random"
    assert json.loads((checkpoint / "config.json").read_text())["architectures"] == ["BaiChuanForCausalLM"]

    assert main(["reproduce", "--profile", "paper-smoke"]) == 0
    results = smoke_sandbox / "results" / "paper-smoke"
    assert (results / "REPORT.md").exists()

    # the model step converted the remote-code checkpoint into a native Llama with a fast tokenizer
    converted = next((smoke_sandbox / "artifacts" / "paper-smoke").glob("base_model-*"))
    assert json.loads((converted / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert (converted / "tokenizer.json").exists()

    # the release layout through the paper's loaders: every record read, none skipped
    stats = json.loads((results / "data_stats.json").read_text("utf-8"))
    assert {s["source"]: s["skipped"] for s in stats["sources"]} == {"chimed_cpt": 0, "chimed_sft": 0, "chimed_dpo": 0}
    assert all(stats["corpora"][c]["records"] > 50 for c in ("cpt", "sft", "dpo"))

    # every stage trained its 3 steps with finite losses, as 2 launched processes under DeepSpeed ZeRO-2
    for stage in STAGES:
        metrics = json.loads((results / f"train_{stage}.json").read_text("utf-8"))
        assert metrics["global_steps"] == 3, stage
        assert math.isfinite(metrics["final_loss"]), stage
        provenance = metrics["provenance"]
        assert (provenance["world_size"], provenance["deepspeed_zero_stage"]) == (2, 2), stage
    assert json.loads((results / "train_dcpt.json").read_text())["trainable_parameters"] > 500_000  # full-parameter

    # every model on every benchmark through the benchmark classes, the adapted one on PubMedQA
    written = {p.stem for p in results.glob("eval_*.json")}
    for model in ("base", "dcpt", "sft", "dpo"):
        assert {f"eval_{model}_{b}" for b in BENCHMARKS} <= written, model
    assert {"eval_sft_cmexam_rag", "eval_dpo_pubmedqa_voc", "eval_adapt_pubmedqa"} <= written
    sft_cmexam = json.loads((results / "eval_sft_cmexam.json").read_text("utf-8"))
    assert sft_cmexam["protocol"]["chat_template"] and sft_cmexam["metrics"]["loglik"]["n"] == 8
    sft = next((smoke_sandbox / "artifacts" / "paper-smoke").glob("sft-*"))
    assert "<reserved_102>" in (sft / "chat_template.jinja").read_text("utf-8")  # the authors' template
    # the letters are told apart: the dummy-prefix tokenizer encodes "A" alone as ["▁", "A"]; scored as the
    # prompt + letter tokenizes (one letter token after "答案："), every option gets its own number
    rows = [json.loads(line) for line in (results / "predictions" / "sft_cmexam.jsonl").read_text("utf-8").splitlines()]
    loglik = [r["scores"] for r in rows if r["mode"] == "loglik"]
    assert len(loglik) == 8 and all(len(set(scores.values())) == len(scores) for scores in loglik)
