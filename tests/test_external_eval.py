"""Evaluating any checkpoint: stage discovery from results/<profile>/train_<stage>.json (evaluation never
imports training), `qilin evaluate --model DIR [--adapter DIR] [--name LABEL]` writing results under its
label, the label's rows in the tables and REPORT.md, and stale-result removal leaving external results."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from evalkit import tiny_model_and_tokenizer
from test_eval_pipeline import real_cfg

from qilin_lib import cli
from qilin_lib.config import load_config
from qilin_lib.evaluation import runner
from qilin_lib.evaluation.external import detect_chat, external_model
from qilin_lib.evaluation.runner import stage_models, trained_stage
from qilin_lib.evaluation.tables import eval_tables

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def model_dir(tmp_path):
    model, tokenizer = tiny_model_and_tokenizer()
    model.save_pretrained(tmp_path / "ext" / "my-model")
    tokenizer.save_pretrained(tmp_path / "ext" / "my-model")
    return tmp_path / "ext" / "my-model"


# ------------------------------------------------------------------------------ no training imports
def test_evaluation_modules_never_import_training():
    for path in sorted((REPO / "qilin_lib" / "evaluation").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom):
                name = "." * node.level + (node.module or "")
                assert not name.lstrip(".").startswith("train") and "qilin_lib.train" not in name, (path, name)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("qilin_lib.train") for a in node.names), path
    code = ("import pkgutil, importlib, sys, qilin_lib.evaluation as e\n"
            "for m in pkgutil.iter_modules(e.__path__): importlib.import_module('qilin_lib.evaluation.' + m.name)\n"
            "print([m for m in sys.modules if m.startswith('qilin_lib.train')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------- discovery
def _record(root: Path, stage: str, key: str, complete: bool | None = True) -> Path:
    results = root / "results" / "tiny"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"train_{stage}.json").write_text(json.dumps({"stage": stage, "provenance": {"artifact_key": key}}))
    art = root / "artifacts" / "tiny" / f"{stage}-{key}"
    if complete is not None:
        art.mkdir(parents=True)
        (art / "manifest.json").write_text(json.dumps({"complete": complete, "files": {}}))
    return art


def test_stages_are_found_from_their_train_records(sandbox, model_dir):
    cfg = load_config("tiny", {"model": {"name_or_path": str(model_dir)}})
    dcpt = _record(sandbox, "dcpt", "k1")
    _record(sandbox, "dpo", "k3")  # trained, but the missing SFT record ends the list before it
    assert [(m.name, m.path, m.chat) for m in stage_models(cfg)] == [
        ("base", str(model_dir), False), ("dcpt", str(dcpt), False)]
    sft = _record(sandbox, "sft", "k2", complete=False)  # an interrupted run: not trained
    assert [m.name for m in stage_models(cfg)] == ["base", "dcpt"]
    (sft / "manifest.json").write_text(json.dumps({"complete": True}))
    assert [(m.name, m.chat) for m in stage_models(cfg)] == [("base", False), ("dcpt", False), ("sft", True),
                                                             ("dpo", True)]
    _record(sandbox, "adapt", "k4", complete=None)  # a record whose artifact directory is gone
    assert trained_stage(cfg, "adapt") is None and runner.adapted_model(cfg) is None


# ---------------------------------------------------------------------------- external models
def test_labels_and_chat_detection(sandbox, model_dir, tmp_path):
    cfg = load_config("tiny", {"model": {"name_or_path": str(model_dir)}})
    assert external_model(cfg, str(model_dir), chat=False).name == "my-model"
    with pytest.raises(ValueError, match="training stage"):
        external_model(cfg, str(model_dir), name="sft")
    with pytest.raises(ValueError, match="letters"):
        external_model(cfg, str(model_dir), name="a/b")
    with pytest.raises(FileNotFoundError):
        external_model(cfg, str(tmp_path / "nowhere"))
    assert external_model(cfg, str(model_dir), name="base").name == "base"  # it is the base model
    # the repo's tiny tokenizer ships the generic chat template; without one, the model is scored raw
    assert detect_chat(cfg, str(model_dir)) is True
    _, tok = tiny_model_and_tokenizer()
    tok.chat_template = None
    tok.save_pretrained(tmp_path / "raw")
    assert detect_chat(cfg, str(tmp_path / "raw")) is False


def _lora_adapter(out: Path) -> Path:
    from peft import LoraConfig, get_peft_model

    model, tokenizer = tiny_model_and_tokenizer()
    peft = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))  # random B: the merge changes weights
    peft.save_pretrained(out)
    return out


def test_cli_evaluates_a_directory_and_an_adapter_under_their_labels(shared_data, sandbox, model_dir, tmp_path,
                                                                     monkeypatch):
    cfg = real_cfg(shared_data)
    cfg.evaluation.modes = ["loglik"]
    monkeypatch.setattr("qilin_lib.config.load_config", lambda *a, **k: cfg)
    out = sandbox / "results" / "paper"
    # an earlier run of this label on another benchmark, and a stage's result: only the former goes
    for model, task in (("my-model", "ceval"), ("sft", "ceval")):
        (out / f"eval_{model}_{task}.json").write_text(json.dumps({"model": model, "task": task, "metrics": {}}))

    assert cli.main(["evaluate", "--profile", "paper", "--model", str(model_dir), "--no-chat",
                     "--benchmarks", "cmexam"]) == 0
    plain = json.loads((out / "eval_my-model_cmexam.json").read_text("utf-8"))
    assert plain["model"] == "my-model" and plain["chat_template"] is False
    assert plain["metrics"]["loglik"]["n"] == 6
    assert (out / "predictions" / "my-model_cmexam.jsonl").exists()
    assert not (out / "eval_my-model_ceval.json").exists() and (out / "eval_sft_ceval.json").exists()

    adapter = _lora_adapter(tmp_path / "adapter")
    assert cli.main(["evaluate", "--profile", "paper", "--model", str(model_dir), "--adapter", str(adapter),
                     "--name", "my-lora", "--benchmarks", "cmexam"]) == 0
    lora = json.loads((out / "eval_my-lora_cmexam.json").read_text("utf-8"))
    assert lora["chat_template"] is True  # detected: the tiny tokenizer carries a template
    assert lora["model_hash"] != plain["model_hash"]  # a merged copy in the artifact cache, not the base dir
    assert list((sandbox / "artifacts" / "paper").glob("external-*/model.safetensors"))
    assert (out / "predictions" / "my-lora_cmexam.jsonl").exists()

    table = eval_tables("paper")["eval_cmexam"]
    assert {"my-model", "my-lora"} <= set(table["model"])
    report = (out / "REPORT.md").read_text("utf-8")
    assert "my-lora" in report and "my-model" in report

    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--profile", "paper", "--name", "x"])  # --name without --model


def test_stale_removal_keeps_external_results(sandbox):
    out = sandbox / "results" / "tiny"
    out.mkdir(parents=True)
    for model in ("dcpt", "my-model"):
        (out / f"eval_{model}_cmexam.json").write_text(json.dumps({"model": model, "task": "cmexam"}))
        (out / "predictions").mkdir(exist_ok=True)
        (out / "predictions" / f"{model}_cmexam.jsonl").write_text("{}\n")
    runner._remove_stale("tiny", {("base", "cmexam")})
    assert not (out / "eval_dcpt_cmexam.json").exists() and not (out / "predictions" / "dcpt_cmexam.jsonl").exists()
    assert (out / "eval_my-model_cmexam.json").exists() and (out / "predictions" / "my-model_cmexam.jsonl").exists()


def test_profile_external_model_from_base_is_a_copy_outside_the_stages(sandbox, model_dir):
    dest = sandbox / "artifacts" / "tiny" / "external" / "base-copy"
    cfg = load_config("tiny", {"model": {"name_or_path": str(model_dir)}, "evaluation": {"external_models": [
        {"name": "base-copy", "path": str(dest), "chat": False, "from_base": True}]}})
    from qilin_lib.evaluation.external import profile_external_models

    [model] = profile_external_models(cfg)
    assert (model.name, model.path, model.chat) == ("base-copy", str(dest), False)
    assert (dest / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    assert not dest.with_name("base-copy.tmp").exists()


def test_heldout_measurements_run_without_training_code(tmp_path, monkeypatch):
    """run_heldout (tiny): probe perplexity and held-out DPO preference through qilin_lib.logprobs."""
    from test_train_dcpt import SMALL_DATA

    from qilin_lib.data.stage import run_data_stage
    from qilin_lib.evaluation.scoring import Scorer

    monkeypatch.setenv("QILIN_ROOT", str(tmp_path))
    monkeypatch.setenv("QILIN_ARTIFACTS", str(tmp_path / "artifacts"))
    cfg = load_config("tiny", {"data": {"tiny": SMALL_DATA["data.tiny"]}})
    run_data_stage(cfg, progress=False)
    model, tokenizer = tiny_model_and_tokenizer()
    metrics, _ = runner.run_heldout(cfg, Scorer(model, tokenizer, chat=False))
    assert set(metrics["probe_perplexity"]["facts"]) == {"taught", "control"}
    assert metrics["dpo_heldout"]["pairs"] == 6 and 0 <= metrics["dpo_heldout"]["logp_accuracy"] <= 1
