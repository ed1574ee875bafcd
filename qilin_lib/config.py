"""Profiles (`tiny`, `gpu-small`, `paper`) as YAML shipped in the package, loaded into dataclasses.

    cfg = load_config("tiny", {"data.dedup.num_perm": 64, "seed": 1})

Overrides come from papermill parameters or the CLI as a flat dict of dotted keys (or nested dicts).
An unknown or mistyped key is an error that names it and suggests the closest valid key; a value of the
wrong type is an error too. Nothing is silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

PROFILES = ("tiny", "gpu-small", "paper")


class ConfigError(ValueError):
    pass


# --------------------------------------------------------------------------------------------- data
@dataclass
class DedupConfig:
    """Lee et al. 2022: exact duplicates after normalisation + MinHash LSH near-duplicates (char 5-grams).

    See qilin_lib.data.dedup for the normalisation and the algorithm; benchmarks/bench_dedup.py measures
    these defaults on ~20 MB of real medical text with planted copies (5-15% of characters edited).
    """
    exact: bool = True
    near: bool = True
    ngram: int = 5
    num_perm: int = 128
    # Banding threshold is deliberately low: edits destroy up to `ngram` shingles each, so 5-15% edited
    # copies sit far below Jaccard 0.8 (15% random substitutions: ~0.28). 0.1 gives 64 bands x 2 rows
    # (datasketch's optimal_param): P(candidate) = 1-(1-J^2)^64 = 0.98 at J 0.25, 0.9996 at J 0.35.
    lsh_threshold: float = 0.1
    bands: int = 0                   # 0 = chosen from lsh_threshold; set both bands and rows to override
    rows: int = 0
    # A candidate pair is a near duplicate when all three estimates pass (see qilin_lib.data.dedup):
    # - 5-gram Jaccard >= verify_threshold (short copies with 15% edits go down to ~0.17; the banding
    #   above is then the limit: P(candidate) = 0.77 at J 0.15, 0.93 at J 0.2);
    # - order: the Jaccard of 5-grams tagged with their relative position (`order_buckets` slices of
    #   the text) >= order_ratio x the 5-gram Jaccard. Edited copies keep 85-100% of it; texts whose
    #   sentences are the same but reordered (restatements, like the tiny profile's corpus) keep ~1/8;
    # - characters: multiset Jaccard of the characters >= char_threshold. EditSim >= s implies
    #   multiset Jaccard >= s / (2 - s): 0.75 <=> EditSim 0.857 for pure substitutions, ~0.78 for an
    #   even mix of substitutions/insertions/deletions (Lee et al.'s EditSim > 0.8 alone would allow
    #   0.667). It rejects documents that share a template but differ in content.
    # 0 disables a test. The two sketches use `sketch_bins` one-permutation MinHash bins each.
    verify_threshold: float = 0.15
    order_ratio: float = 0.5
    order_buckets: int = 8
    char_threshold: float = 0.75
    sketch_bins: int = 128
    # Bounds for documents that share boilerplate with many others: read at most max_bucket (the
    # earliest) kept documents per LSH bucket, and verify at most max_candidates per document (those
    # sharing the most bands).
    max_bucket: int = 16
    max_candidates: int = 32
    min_chars: int = 20              # shorter documents (normalised chars) are only exact-deduplicated
    batch_size: int = 2000           # streaming batch: documents ...
    batch_chars: int = 500_000       # ... or characters, whichever comes first (bounds working memory)
    seed: int = 1


@dataclass
class TinyDataConfig:
    """Sizes of the corpora generated from the tiny knowledge base (DESIGN.md section 3).

    The knowledge base (qilin_lib/data/kb/tiny_kb.json) holds 100 diseases; the three groups must fit in it.
    """
    n_dcpt_diseases: int = 60        # taught by the DCPT corpus, evaluated
    n_sft_diseases: int = 20         # taught by DCPT and used for SFT / DPO-train items
    n_control_diseases: int = 20     # never mentioned by any training text
    restatements_per_fact: int = 24  # per epoch; x ~2.5 DCPT epochs = 50-80 exposures per fact
    # share of the restatement rounds written as KG passages / encyclopedia text / QA text / dialogues
    cpt_mix: dict = field(default_factory=lambda: {"kg": 0.3, "text": 0.3, "qa": 0.2, "dialogue": 0.2})
    n_cmexam_items: int = 300        # 5 options; dcpt and control diseases in proportion to their counts
    n_ceval_dev: int = 5             # the 5 dev shots (4 options, with explanation)
    n_ceval_items: int = 120         # C-Eval-style val items (4 options, question ends with ____)
    n_qa_test: int = 120             # Huatuo-style open QA test pairs
    n_cmexam_train: int = 300        # CMExam-style train split for task adaptation (sft diseases, training stems)
    n_probe_texts: int = 240         # held-out statements for perplexity (taught vs control)
    n_sft_single: int = 400          # single-turn medical SFT items, the MCQ items below included
    n_sft_mcq: int = 100             # exam-style MCQ items (answer + explanation) among n_sft_single
    n_sft_multi: int = 150           # 2-3 turn medical conversations
    n_general_sft: int = 60          # greetings, arithmetic, unit conversion, simple instructions
    n_dpo_train: int = 400           # about sft diseases
    n_dpo_heldout: int = 100         # about dcpt diseases, prompt wordings unused in dpo_train
    dpo_evasive_fraction: float = 0.3  # share of rejected answers that evade instead of being wrong


@dataclass
class DataConfig:
    # "tiny_kb": generate everything from the embedded knowledge base; "sources": build ChiMed from
    # `sources` (local paths or hf://datasets/... specs).
    generator: str = "tiny_kb"
    sources: list = field(default_factory=list)
    benchmarks: dict = field(default_factory=dict)
    errors: str = "raise"
    max_records_per_source: int = 0  # 0 = all
    dedup: DedupConfig = field(default_factory=DedupConfig)
    tiny: TinyDataConfig = field(default_factory=TinyDataConfig)


# ------------------------------------------------------------------------------------- model/train
@dataclass
class ModelConfig:
    name_or_path: str = "tiny"      # "tiny" = built by the repo's factory; else a hub id or local dir
    trust_remote_code: bool = False
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    # tiny factory only
    vocab_size: int = 3000
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 688
    max_position_embeddings: int = 512


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 8
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = "all-linear"


@dataclass
class StageConfig:
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    warmup_steps: int = 0
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_steps: int = -1
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    block_size: int = 1024           # DCPT packing
    max_source_length: int = 256     # SFT / DPO prompt
    max_target_length: int = 256     # SFT / DPO response
    beta: float = 0.1                # DPO
    lora: LoraConfig = field(default_factory=LoraConfig)
    deepspeed: str = ""              # name of a shipped DeepSpeed config, e.g. "zero2"
    gradient_checkpointing: bool = False
    save_steps: int = 500
    logging_steps: int = 10


@dataclass
class EvalConfig:
    """Notebook 05 (qilin_lib.evaluation): which benchmarks and modes, prompt window, RAG, VoC."""
    benchmarks: list = field(default_factory=lambda: ["cmexam", "ceval", "huatuo26m", "pubmedqa"])
    modes: list = field(default_factory=lambda: ["generate", "loglik", "cloze"])
    batch_size: int = 16
    max_length: int = 0              # prompt + answer window in tokens; 0 = the model's maximum
    max_new_tokens_mcq: int = 32     # enough for a letter and the start of an explanation
    max_new_tokens_qa: int = 128
    max_items: int = 0               # per benchmark; 0 = all (a smoke run sets a few)
    rag_models: list = field(default_factory=lambda: ["sft", "dpo"])
    rag_benchmarks: list = field(default_factory=lambda: ["cmexam", "ceval", "huatuo26m", "pubmedqa"])
    rag_top_k: int = 3
    rag_max_chars: int = 300         # per retrieved passage
    voc_models: list = field(default_factory=lambda: ["sft", "dpo"])  # VoC asks for a verdict: chat models
    prior_baseline: bool = True      # tiny: cloze on the question with the disease name removed
    adapt_benchmark: str = "cmexam"  # task adaptation (AntGLM-Med stage 3); "" = skip


@dataclass
class HardwareConfig:
    num_gpus: int = 0
    bf16: bool = False


@dataclass
class ProfileConfig:
    name: str = "tiny"
    description: str = ""
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    dcpt: StageConfig = field(default_factory=StageConfig)
    sft: StageConfig = field(default_factory=StageConfig)
    dpo: StageConfig = field(default_factory=StageConfig)
    adapt: StageConfig = field(default_factory=lambda: StageConfig(lora=LoraConfig(enabled=True)))
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    citations: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------- loading
def load_config(profile: str = "tiny", overrides: dict | None = None) -> ProfileConfig:
    """Load a shipped profile (or a YAML path) and apply overrides; errors name the offending key."""
    raw = _read_profile(profile)
    cfg = _build(ProfileConfig, raw, prefix="")
    for key, value in _flatten(overrides or {}).items():
        _set(cfg, key, value)
    return cfg


def _read_profile(profile: str) -> dict:
    if profile.endswith((".yaml", ".yml")):
        with open(profile, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)} or a .yaml path")
    text = resources.files("qilin_lib.profiles").joinpath(f"{profile}.yaml").read_text("utf-8")
    return yaml.safe_load(text) or {}


def _unknown(key: str, valid: list[str], prefix: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {prefix + close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
    return ConfigError(f"unknown config key {prefix + key!r}{hint}")


def _build(cls, raw: dict, prefix: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'profile'}: expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise _unknown(key, list(fields), prefix)
        kwargs[key] = _coerce(fields[key], value, prefix + key)
    return cls(**kwargs)


def _coerce(f: dataclasses.Field, value: Any, dotted: str):
    ftype = _resolve_type(f.type)  # annotations are strings (PEP 563): map them back to types
    if dataclasses.is_dataclass(ftype):
        return _build(ftype, value, dotted + ".")
    return _check_type(ftype, value, dotted)


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


def _resolve_type(hint):
    if isinstance(hint, str):
        return _TYPES.get(hint) or globals()[hint]
    return hint


def _check_type(ftype, value, dotted: str):
    if ftype is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if ftype in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{dotted}: expected {ftype.__name__}, got bool {value!r}")
    if not isinstance(value, ftype):
        raise ConfigError(f"{dotted}: expected {ftype.__name__}, got {type(value).__name__} {value!r}")
    return value


def _flatten(overrides: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not _is_dict_field(dotted):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _is_dict_field(dotted: str) -> bool:
    target = ProfileConfig
    for part in dotted.split("."):
        fields = {f.name: f for f in dataclasses.fields(target)} if dataclasses.is_dataclass(target) else {}
        if part not in fields:
            return False
        target = _resolve_type(fields[part].type)
    return target is dict


def _set(cfg: ProfileConfig, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    obj, prefix = cfg, ""
    for part in parts[:-1]:
        fields = {f.name for f in dataclasses.fields(obj)}
        if part not in fields:
            raise _unknown(part, sorted(fields), prefix)
        obj, prefix = getattr(obj, part), prefix + part + "."
        if not dataclasses.is_dataclass(obj):
            raise ConfigError(f"{prefix.rstrip('.')!r} is a value, not a section")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    leaf = parts[-1]
    if leaf not in fields:
        raise _unknown(leaf, sorted(fields), prefix)
    setattr(obj, leaf, _coerce(fields[leaf], value, dotted))
