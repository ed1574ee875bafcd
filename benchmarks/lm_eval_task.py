"""Our multiple-choice items as an lm-evaluation-harness task, so that lm-eval scores exactly our prompts.

    yaml = export_task(out_dir, "qilin_ceval", [(item_id, prompt, letters, gold_letter), ...])
    lm_eval --include_path out_dir --tasks qilin_ceval ...

Each doc holds the rendered prompt (`text`, the exact string our `loglik` mode scores after, chat wrapping
included), the option letters (`choices`) and the gold letter's index. `target_delimiter: ""` makes the
continuation the bare letter, as our next-token letter scoring reads it (lm-eval's default " " would score
" A"). The task reads its docs with the `json` builder of `datasets` from a local file: nothing from a hub.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def export_task(out_dir: str | Path, task: str, docs: Sequence[tuple[str, str, Sequence[str], str]]) -> Path:
    """Write <out_dir>/<task>.jsonl and <task>.yaml; returns the YAML's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"{task}.jsonl"
    lines = [json.dumps({"id": item_id, "text": text, "choices": list(letters), "gold": list(letters).index(gold)},
                        ensure_ascii=False) for item_id, text, letters, gold in docs]
    data.write_text("\n".join(lines) + "\n", "utf-8")
    # JSON is valid YAML: no YAML library needed, and no quoting rules to get wrong in the prompt-free config.
    config = {"task": task, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
              "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "text",
              "doc_to_choice": "choices", "doc_to_target": "gold", "target_delimiter": "", "num_fewshot": 0,
              "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]}
    path = out / f"{task}.yaml"
    path.write_text(json.dumps(config, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return path


def read_docs(yaml_path: str | Path) -> list[dict]:
    """The docs a task file points at (what lm-eval will read)."""
    config = json.loads(Path(yaml_path).read_text("utf-8"))
    data = Path(config["dataset_kwargs"]["data_files"]["test"])
    return [json.loads(line) for line in data.read_text("utf-8").splitlines() if line.strip()]
