"""benchmarks/bench_eval.py --lm-eval hands lm-evaluation-harness our exact prompts (the "same prompts" in its
comparison): the exported task's docs are our rendered prompts, letters and gold letters."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from qilin_lib.config import load_config
from qilin_lib.evaluation.benchmarks import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lm_eval_task.py"


def _module():
    spec = importlib.util.spec_from_file_location("lm_eval_task", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exported_task_holds_our_prompts_letters_and_golds(shared_data, tmp_path):
    cfg = load_config("paper")
    cfg.data.benchmarks = {"ceval": str(shared_data / "ceval_medical"),
                           "pubmedqa": {"path": str(shared_data / "pubmedqa" / "pqal_trainval.json")}}
    task = _module()
    for name in ("ceval", "pubmedqa"):
        bench = load_benchmark(cfg, name, 6)
        path = task.export_task(tmp_path, f"qilin_{name}", [(it["id"], bench.prompt(it), list(it["options"]), it["answer"])
                                                             for it in bench.items])
        config = json.loads(path.read_text("utf-8"))
        # the bare letter is the continuation (lm-eval's default delimiter " " would score " A")
        assert config["target_delimiter"] == "" and config["output_type"] == "multiple_choice"
        assert config["doc_to_text"] == "text" and config["doc_to_choice"] == "choices"
        docs = task.read_docs(path)
        assert [d["text"] for d in docs] == [bench.prompt(it) for it in bench.items]
        assert [d["choices"][d["gold"]] for d in docs] == [it["answer"] for it in bench.items]
        assert all(d["choices"] == list(it["options"]) for d, it in zip(docs, bench.items))
