"""Where the models come from, shared by training and evaluation (which never imports training): the base
model a profile starts from, and the identity hash recorded beside every result of a model."""
from __future__ import annotations

import json
from pathlib import Path

from .cache import hash_obj
from .config import ProfileConfig

# What identifies a stage's model in model_hash: its weights and vocabulary. The other files of an artifact
# record the run (train_metrics.json: wall times; training_args.bin: a dated logging dir; the adapter's
# config and model card: absolute paths and versions), so retraining to bitwise-identical weights, in any
# checkout, keeps every later stage's cache key and the hashes written into results/.
MODEL_IDENTITY_SUFFIXES = (".safetensors", "tokenizer.json", "chat_template.jinja")


def model_hash(path_or_id: str | Path) -> str:
    """For a cache artifact, the hash of its weight and vocabulary files (MODEL_IDENTITY_SUFFIXES); for
    another local dir its file names/sizes/mtimes (hashing 14 GB of weights costs more than it guards); for
    a hub id the id itself."""
    path = Path(path_or_id)
    manifest = path / "manifest.json"
    if manifest.exists():
        files = json.loads(manifest.read_text("utf-8"))["files"]
        return hash_obj({name: f for name, f in files.items() if name.endswith(MODEL_IDENTITY_SUFFIXES)})
    if path.is_dir():
        return hash_obj(sorted((str(p.relative_to(path)), p.stat().st_size, int(p.stat().st_mtime))
                               for p in path.rglob("*") if p.is_file()))
    return str(path_or_id)


def base_model_dir(cfg: ProfileConfig, force: bool = False) -> Path | str:
    """The model the first training stage starts from: with `model.convert`, the profile's checkpoint
    converted once into the `base_model` artifact (qilin_lib.convert.converted_base_model); else a hub id /
    local dir as the profile names it, or, for `model.name_or_path: tiny`, the repo's own tokenizer +
    untrained Llama built on the data stage's CPT and SFT texts (cached as the `base_model` artifact, keyed
    by the data artifact's output hash)."""
    if cfg.model.convert:
        from .convert import converted_base_model

        return converted_base_model(cfg, force=force)
    if cfg.model.name_or_path != "tiny":
        return cfg.model.name_or_path
    from .data.stage import data_artifact, load_corpus
    from .modeling import tiny_base_model

    data = data_artifact(cfg)
    if not data.complete:
        raise FileNotFoundError(f"no complete data artifact for profile {cfg.name!r} at {data.path}: "
                                "run notebook 01 (or `qilin reproduce --only 01`) first")

    def texts():  # only called on a cache miss
        yield from load_corpus(cfg, "cpt")["text"]
        for messages in load_corpus(cfg, "sft")["messages"]:
            yield from (m["content"] for m in messages)

    return tiny_base_model(cfg, texts=texts, input_hash=data.manifest["output_hash"], force=force)
