"""Checkpoints the repo did not train (the paper's Baichuan-7B baseline, a published medical model, a user's
own): `qilin evaluate --model <dir | hub id> [--adapter dir] [--name label]` or the profile's
`evaluation.external_models` score them like a stage, under their own label, into the same result files
(eval_<label>_<task>.json, predictions/<label>_<task>.jsonl), tables and REPORT.md.

Chat or not: `chat` given decides; left out (None), a model whose tokenizer carries a chat template is
scored through it (an instruction-tuned checkpoint ships one; a base model such as Baichuan-7B has none).
A model that ships a template but was not trained to use it needs `--no-chat`."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..cache import hash_obj
from ..model_source import base_model_dir, model_hash
from ..paths import artifacts_dir, expand_path
from .runner import STAGE_CHAT, EvalModel, trained_stage

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def label_for(model: str, name: str | None = None) -> str:
    """`name`, else the directory's (or hub id's) last component; a label must be a plain file-name part."""
    label = name or Path(model.rstrip("/")).name
    if not LABEL.match(label):
        raise ValueError(f"model label {label!r}: use letters, digits, '.', '_' or '-' (--name)")
    return label


def _stage_path(cfg, stage: str) -> str | None:
    if stage == "base":
        return str(base_model_dir(cfg))
    found = trained_stage(cfg, stage)
    return found.path if found else None


def detect_chat(cfg, path: str) -> bool:
    """Whether the checkpoint's own tokenizer carries a chat template."""
    from transformers import AutoTokenizer

    from ..modeling import hub_kwargs

    tok = AutoTokenizer.from_pretrained(path, **hub_kwargs(cfg.model, path))
    return getattr(tok, "chat_template", None) is not None


def merged_with_adapter(cfg, model: str, adapter: str) -> str:
    """`model` with the PEFT adapter folded in, saved once in the artifact cache (keyed by both inputs'
    identities) so that the scorer loads an ordinary checkpoint."""
    from ..modeling import merge_adapter

    if not (Path(adapter) / "adapter_config.json").exists():
        raise FileNotFoundError(f"--adapter {adapter}: no adapter_config.json (a PEFT adapter directory)")
    out = Path(artifacts_dir(cfg.name)) / f"external-{hash_obj([model_hash(model), model_hash(adapter)])}"
    if (out / "config.json").exists():
        return str(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merge_adapter(model, adapter, tmp, model_cfg=cfg.model)
    tmp.rename(out)  # complete or absent: a crash leaves only the .tmp
    return str(out)


def external_model(cfg, model: str, *, adapter: str = "", name: str | None = None,
                   chat: bool | None = None) -> EvalModel:
    """An EvalModel for a checkpoint the repo did not train. A local path must exist; anything else is
    taken for a hub id (loaded as the base model is, through modeling.load_model_and_tokenizer). A label
    equal to a stage name (base/dcpt/sft/dpo/adapt) is refused unless the path is that stage's model."""
    model = expand_path(model)
    if Path(model).exists() and not Path(model).is_dir():
        raise NotADirectoryError(f"--model {model}: a checkpoint directory or a hub id, not a file")
    if model.startswith(("/", ".", "~")) and not Path(model).is_dir():
        raise FileNotFoundError(f"--model {model}: no such directory")
    label = label_for(model, name)
    if label in STAGE_CHAT:
        same = not adapter and _stage_path(cfg, label) is not None and \
            Path(_stage_path(cfg, label)).resolve() == Path(model).resolve()
        if not same:
            raise ValueError(f"label {label!r} is a training stage's name; choose another with --name")
    path = merged_with_adapter(cfg, model, expand_path(adapter)) if adapter else model
    return EvalModel(label, path, detect_chat(cfg, path) if chat is None else chat)


def copy_of_base(cfg, dest: str) -> None:
    """Save the profile's base model into `dest` once (complete or absent, via a temporary sibling)."""
    out = Path(dest)
    if (out / "config.json").exists():
        return
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(base_model_dir(cfg), tmp)
    tmp.rename(out)


def profile_external_models(cfg) -> list[EvalModel]:
    """The profile's `evaluation.external_models`; a missing directory is an error naming it."""
    models = []
    for m in cfg.evaluation.external_models:
        if m.from_base:
            copy_of_base(cfg, expand_path(m.path))
        models.append(external_model(cfg, m.path, adapter=m.adapter, name=m.name, chat=m.chat))
    return models


def evaluate_external(cfg, model: EvalModel, benchmarks: list | None = None,
                      progress: bool = True) -> list[dict]:
    """`model` on `benchmarks` (default: the profile's, as far as available), the plain protocol (no RAG,
    VoC or question variants). A re-run under the same label replaces that label's earlier results, so
    one label's row never mixes two checkpoints; other models' results are untouched."""
    from .benchmarks import available
    from .runner import evaluate_model, remove_results

    names = list(benchmarks or [b for b in cfg.evaluation.benchmarks if b in available(cfg)])
    if not names:
        raise ValueError(f"profile {cfg.name}: no benchmark available to evaluate {model.name} on")
    results = evaluate_model(cfg, model, names, progress)
    remove_results(cfg.name, keep={(r["model"], r["task"]) for r in results}, models={model.name})
    return results
