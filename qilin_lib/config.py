"""Profiles (`tiny`, `gpu-small`, `paper`) as YAML shipped in the package, loaded into typed dataclasses.

    cfg = load_config("tiny", {"data.dedup.num_perm": 64, "seed": 1})

Overrides come from papermill parameters or the CLI as a flat dict of dotted keys (or nested dicts).
Validation is pydantic's (the dataclasses below are pydantic dataclasses: extra keys forbidden, types
strict, ranges as annotations) all the way down: lists of benchmark names, scoring modes, model names,
every source spec and its keys. An unknown key or name is an error that names it (dotted path) and the
closest valid one; a value of the wrong type or out of range is an error too. Nothing is silently ignored.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import re
from dataclasses import field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError,
                      with_config)
from pydantic.dataclasses import dataclass
from typing_extensions import NotRequired, TypedDict

# paper-smoke: the paper profile at CPU size (`extends: paper`), run in CI on the inputs of `qilin smoke-inputs`
PROFILES = ("tiny", "gpu-small", "paper", "paper-smoke")
# The training stages, in pipeline order; each has a profile section and runs through train/launch.py
# (here, below both the CLI and the launcher, so that neither imports the other or torch).
TRAINING_STAGES = ("dcpt", "sft", "dpo", "adapt")


class ConfigError(ValueError):
    pass


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` (a `--set` / `-p` argument): the value parsed as a Python literal where it is one, else
    kept as a string. The launcher passes values as repr() literals, so they round-trip unchanged."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


# --------------------------------------------------------------------------------- value types
# Strict scalars: YAML's "3" stays a string error for an int field, and `true` is no integer.
Count = Annotated[int, Strict(), Field(ge=0)]            # 0 allowed (0 = "all" / "off" where documented)
Positive = Annotated[int, Strict(), Field(ge=1)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]  # ints are accepted and become floats
Fraction = Annotated[float, Strict(), Field(ge=0, le=1)]
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]


def _one_of(kind: str, valid) -> AfterValidator:
    """A name checked against a registry that is read only when a config is validated (lazy imports keep
    `qilin --help` fast and avoid import cycles); the error names the closest valid name."""
    def check(value: str) -> str:
        names = sorted(valid())
        if value not in names:
            close = difflib.get_close_matches(value, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(names)}"
            raise ValueError(f"unknown {kind} {value!r}; {hint}")
        return value
    return AfterValidator(check)


def _loaders():
    from .data.sources import LOADERS
    return LOADERS


def _benchmarks():
    from .evaluation.benchmarks import BENCHMARKS
    return BENCHMARKS


def _cpt_subsets():
    from .data.chimed import CPT_SUBSETS
    return CPT_SUBSETS


def _ceval_subjects():
    from .evaluation.benchmarks import CEVAL_SUBJECTS
    return CEVAL_SUBJECTS


def _schedulers():
    """transformers' SchedulerType values, read from its source: the module that defines them imports torch
    and huggingface_hub, and a config must load before either (`qilin` sets HF_HUB_OFFLINE from the profile,
    which huggingface_hub reads once at import). tests/test_config.py checks this against the enum itself."""
    import ast
    from importlib.util import find_spec

    tree = ast.parse(Path(find_spec("transformers").submodule_search_locations[0], "trainer_utils.py").read_text("utf-8"))
    enum = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "SchedulerType")
    return [node.value.value for node in enum.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)]


def _chat_template(value: str) -> str:
    """`auto`, a template registered in qilin_lib.chat_templates, or an existing .jinja file."""
    from .chat_templates import TEMPLATES

    if value == "auto" or value in TEMPLATES:
        return value
    if value.endswith(".jinja"):
        if Path(value).expanduser().is_file():
            return value
        raise ValueError(f"chat template file {value!r} does not exist")
    names = ["auto", *sorted(TEMPLATES)]
    close = difflib.get_close_matches(value, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(names)} or a path to a .jinja file"
    raise ValueError(f"unknown chat template {value!r}; {hint}")


def _deepspeed_configs():
    return [""] + [p.stem.removeprefix("deepspeed_") for p in resources.files("qilin_lib.configs").iterdir()
                   if p.name.startswith("deepspeed_") and p.name.endswith(".json")]


LoaderName = Annotated[str, Strict(), _one_of("loader", _loaders)]
BenchmarkName = Annotated[str, Strict(), _one_of("benchmark", _benchmarks)]
ScoringMode = Literal["generate", "loglik", "cloze"]
EvalModelName = Literal["base", "dcpt", "sft", "dpo", "adapt"]     # what notebook 05 evaluates


@with_config(ConfigDict(extra="forbid"))
class SourceSpec(TypedDict):
    """One entry of `data.sources` (qilin_lib.data.stage and qilin_lib.data.chimed.route read it)."""
    name: Str
    loader: LoaderName
    path: Str                                                 # local path or hf://datasets/...
    stage: NotRequired[Literal["cpt", "sft", "dpo", "all", "eval"]]
    subset: NotRequired[Annotated[str, Strict(), _one_of("CPT subset", _cpt_subsets)]]
    category: NotRequired[Literal["general", "medical"]]
    options: NotRequired[dict[str, Any]]                      # keyword arguments of the loader


@with_config(ConfigDict(extra="forbid"))
class BenchmarkSpec(TypedDict):
    """A `data.benchmarks` entry given as a mapping (a plain string is its `path`)."""
    path: Str
    test_ids: NotRequired[Str]                                # PubMedQA: test_ground_truth.json
    subjects: NotRequired[list[Annotated[str, Strict(), _one_of("C-Eval subject", _ceval_subjects)]]]


def _not_zero(steps: int) -> int:
    if steps == 0:
        raise ValueError("max_steps 0 would train nothing; -1 = train for `epochs`")
    return steps


def _safe_profile_name(name: str) -> str:
    # The name becomes a directory under results/, figures/ and artifacts/: no separators, no "..".
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise ValueError(f"profile name {name!r} must be letters, digits, '.', '_' or '-' (it names directories)")
    return name


ProfileName = Annotated[str, Strict(), AfterValidator(_safe_profile_name)]
BenchmarkEntry = Annotated[BenchmarkSpec, BeforeValidator(lambda v: {"path": v} if isinstance(v, str) else v)]
STRICT = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------------------------- data
@dataclass(config=STRICT)
class DedupConfig:
    """Lee et al. 2022: exact duplicates after normalisation + MinHash LSH near-duplicates (char 5-grams).

    See qilin_lib.data.dedup for the normalisation and the algorithm; benchmarks/bench_dedup.py measures
    these defaults on ~20 MB of real medical text with planted copies (5-15% of characters edited).
    """
    exact: Bool = True
    near: Bool = True
    ngram: Positive = 5
    num_perm: Positive = 128
    # Banding threshold is deliberately low: edits destroy up to `ngram` shingles each, so 5-15% edited
    # copies sit far below Jaccard 0.8 (15% random substitutions: ~0.28). 0.1 gives 64 bands x 2 rows
    # (datasketch's optimal_param): P(candidate) = 1-(1-J^2)^64 = 0.98 at J 0.25, 0.9996 at J 0.35.
    lsh_threshold: Annotated[float, Strict(), Field(gt=0, le=1)] = 0.1
    bands: Count = 0                   # 0 = chosen from lsh_threshold; set both bands and rows to override
    rows: Count = 0
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
    verify_threshold: Fraction = 0.15
    order_ratio: Fraction = 0.5
    order_buckets: Positive = 8
    char_threshold: Fraction = 0.75
    sketch_bins: Positive = 128
    # Bounds for documents that share boilerplate with many others: read at most max_bucket (the
    # earliest) kept documents per LSH bucket, and verify at most max_candidates per document (those
    # sharing the most bands).
    max_bucket: Positive = 16
    max_candidates: Positive = 32
    min_chars: Count = 20              # shorter documents (normalised chars) are only exact-deduplicated
    batch_size: Positive = 2000           # streaming batch: documents ...
    batch_chars: Positive = 500_000       # ... or characters, whichever comes first (bounds working memory)
    seed: Count = 1


@dataclass(config=STRICT)
class TinyDataConfig:
    """Sizes of the corpora generated from the tiny knowledge base (DESIGN.md section 3).

    The knowledge base (qilin_lib/data/kb/tiny_kb.json) holds 100 diseases; the three groups must fit in it.
    """
    n_dcpt_diseases: Positive = 60        # taught by the DCPT corpus, evaluated
    n_sft_diseases: Positive = 20         # taught by DCPT and used for SFT / DPO-train items
    n_control_diseases: Positive = 20     # never mentioned by any training text
    restatements_per_fact: Positive = 24  # per epoch; x ~2.5 DCPT epochs = 50-80 exposures per fact
    # share of the restatement rounds written as KG passages / encyclopedia text / QA text / dialogues
    cpt_mix: dict[Literal["kg", "text", "qa", "dialogue"], Fraction] = field(
        default_factory=lambda: {"kg": 0.3, "text": 0.3, "qa": 0.2, "dialogue": 0.2})
    n_cmexam_items: Positive = 300        # 5 options; dcpt and control diseases in proportion to their counts
    n_ceval_dev: Positive = 5             # the 5 dev shots (4 options, with explanation)
    n_ceval_items: Positive = 120         # C-Eval-style val items (4 options, question ends with ____)
    n_qa_test: Positive = 120             # Huatuo-style open QA test pairs
    n_cmexam_train: Count = 300        # CMExam-style train split for task adaptation (sft diseases, training stems)
    n_probe_texts: Positive = 240         # held-out statements for perplexity (taught vs control)
    n_sft_single: Positive = 400          # single-turn medical SFT items, the MCQ items below included
    n_sft_mcq: Count = 100             # exam-style MCQ items (answer + explanation) among n_sft_single
    n_sft_multi: Count = 150           # 2-3 turn medical conversations
    n_general_sft: Count = 60          # greetings, arithmetic, unit conversion, simple instructions
    n_dpo_train: Positive = 400           # about sft diseases
    n_dpo_heldout: Positive = 100         # about dcpt diseases, prompt wordings unused in dpo_train
    dpo_evasive_fraction: Fraction = 0.3  # share of rejected answers that evade instead of being wrong


@dataclass(config=STRICT)
class DecontaminationConfig:
    """The contamination check of the data stage (qilin_lib.data.decontam): which benchmark test items have
    an exact or near duplicate (the `dedup` settings) in each training corpus. It always runs and is
    reported; `drop` also removes the contaminated training records. Off in every profile: the paper
    trained on ChiMed as released (its CPT QA subset includes CMExam by its own account), so dropping
    would no longer reproduce it; the report says how many records a decontaminated run would lose."""
    drop: Bool = False
    examples: Count = 3                # matched items shown per corpus, benchmark and key


@dataclass(config=STRICT)
class DataConfig:
    # "tiny_kb": generate everything from the embedded knowledge base; "sources": build ChiMed from
    # `sources` (local paths or hf://datasets/... specs).
    generator: Literal["tiny_kb", "sources"] = "tiny_kb"
    sources: list[SourceSpec] = field(default_factory=list)
    benchmarks: dict[BenchmarkName, BenchmarkEntry] = field(default_factory=dict)  # "x" = {path: "x"}
    errors: Literal["raise", "skip"] = "raise"
    # Under errors: skip, a source that loads nothing or skips more than this share of its records stops
    # the data stage (qilin_lib.data.stage.check_skips).
    max_skip_fraction: Fraction = 0.01
    max_records_per_source: Count = 0  # 0 = all
    # Worker processes that tokenise and pack the DCPT corpus (datasets.map num_proc); 1 = in process. The
    # packed blocks are the same for every value, so it is no part of any artifact's key.
    num_proc: Positive = 1
    dedup: DedupConfig = field(default_factory=DedupConfig)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    tiny: TinyDataConfig = field(default_factory=TinyDataConfig)


# ------------------------------------------------------------------------------------- model/train
@dataclass(config=STRICT)
class ModelConfig:
    # "tiny" = built by the repo's factory; else a hub id or local dir
    name_or_path: Annotated[str, Strict(), Field(min_length=1)] = "tiny"
    trust_remote_code: Bool = False
    # Hub commit of name_or_path ("" = the latest). Loading with trust_remote_code runs the hub's code:
    # modeling refuses that unless revision pins a commit (40 hex digits), so the code that runs is the code
    # reviewed. With `convert` it is the snapshot that is downloaded and converted.
    revision: Str = ""
    # "baichuan": name_or_path is a Baichuan-7B checkpoint (a local dir, or a hub id downloaded at revision)
    # that the model step converts once into a native Llama (qilin_lib.convert); every stage loads that, with
    # no remote code. "" = load name_or_path as it is.
    convert: Literal["", "baichuan"] = ""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"] = "sdpa"
    # Prompt format of SFT, DPO and chat evaluation (qilin_lib.chat_templates): "auto" = the tokenizer's own
    # (the repo's generic one where it has none), a registered name ("baichuan-chat": the authors'), or a
    # path to a .jinja file. Every load gives the tokenizer this template.
    chat_template: Annotated[str, Strict(), AfterValidator(_chat_template)] = "auto"
    # Extra variables of every chat-template render (SFT, DPO, evaluation): {enable_thinking: false} for Qwen3.
    chat_template_kwargs: dict[Str, Any] = field(default_factory=dict)
    # Load check for pretrained bases: perplexity on a medical probe sentence at most this (0 = off; a random
    # or broken model sits near the vocabulary size). paper/gpu-small: 1000.
    max_probe_perplexity: Annotated[float, Strict(), Field(ge=0)] = 0.0
    # tiny factory only
    vocab_size: Positive = 3000
    hidden_size: Positive = 256
    num_layers: Positive = 4
    num_heads: Positive = 4
    intermediate_size: Positive = 688
    max_position_embeddings: Positive = 512


@dataclass(config=STRICT)
class LoraConfig:
    enabled: Bool = False
    r: Positive = 8
    alpha: Positive = 32
    dropout: Annotated[float, Strict(), Field(ge=0, lt=1)] = 0.05
    target_modules: Annotated[str, Strict(), Field(min_length=1)] = "all-linear"


@dataclass(config=STRICT)
class StageConfig:
    learning_rate: PositiveFloat = 2e-4
    lr_scheduler: Annotated[str, Strict(), _one_of("lr_scheduler", _schedulers)] = "cosine"
    warmup_ratio: Annotated[float, Strict(), Field(ge=0, lt=1)] = 0.05
    warmup_steps: Count = 0
    weight_decay: Annotated[float, Strict(), Field(ge=0)] = 0.01
    epochs: PositiveFloat = 1.0
    max_steps: Annotated[int, Strict(), Field(ge=-1), AfterValidator(_not_zero)] = -1
    per_device_batch_size: Positive = 1
    gradient_accumulation_steps: Positive = 1
    block_size: Annotated[int, Strict(), Field(ge=2)] = 1024           # DCPT packing
    max_source_length: Positive = 256     # SFT / DPO prompt
    max_target_length: Positive = 256     # SFT / DPO response
    beta: PositiveFloat = 0.1                # DPO
    lora: LoraConfig = field(default_factory=LoraConfig)
    # name of a shipped DeepSpeed config (qilin_lib/configs/deepspeed_<name>.json), e.g. "zero2"
    deepspeed: Annotated[str, Strict(), _one_of("DeepSpeed config", _deepspeed_configs)] = ""
    gradient_checkpointing: Bool = False
    save_steps: Positive = 500
    logging_steps: Positive = 10


@dataclass(config=STRICT)
class ExternalModelConfig:
    """A model evaluated beside the stages under its own label (what `qilin evaluate --model` takes): a
    local directory (`{artifacts}/...`, `{shared}/...` placeholders allowed) or a hub id, optionally with a
    PEFT adapter merged into it; `chat` null = detect from the tokenizer's chat template."""
    name: Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    path: Str
    adapter: Annotated[str, Strict()] = ""
    chat: Bool | None = None
    # tiny's demonstration: `path` is first filled with a copy of the profile's base model, so that a
    # directory which is none of the stages is scored (its rows must equal the base model's)
    from_base: Bool = False


@dataclass(config=STRICT)
class EvalConfig:
    """Notebook 05 (qilin_lib.evaluation): which benchmarks and modes, prompt window, RAG, VoC."""
    benchmarks: list[BenchmarkName] = field(default_factory=lambda: ["cmexam", "ceval", "huatuo26m", "pubmedqa"])
    modes: list[ScoringMode] = field(default_factory=lambda: ["generate", "loglik", "cloze"])
    # prompts per forward pass (local backend); 0 = sized to the GPU's free memory after loading the model
    # (qilin_lib.plan.eval_batch_size: KV cache + one layer's activations per prompt), 16 on CPU
    batch_size: Count = 16
    max_length: Count = 0              # prompt + answer window in tokens; 0 = the model's maximum
    max_new_tokens_mcq: Positive = 32     # enough for a letter and the start of an explanation
    max_new_tokens_qa: Positive = 128
    max_items: Count = 0               # per benchmark; 0 = all (a smoke run sets a few)
    rag_models: list[EvalModelName] = field(default_factory=lambda: ["sft", "dpo"])
    rag_benchmarks: list[BenchmarkName] = field(
        default_factory=lambda: ["cmexam", "ceval", "huatuo26m", "pubmedqa"])
    rag_top_k: Positive = 3
    rag_max_chars: Positive = 300         # per retrieved passage
    # VoC asks for a verdict: chat models
    voc_models: list[EvalModelName] = field(default_factory=lambda: ["sft", "dpo"])
    prior_baseline: Bool = True      # tiny: cloze on the question with the disease name removed
    # task adaptation (AntGLM-Med stage 3): a benchmark with a training split; "" = skip
    adapt_benchmark: Annotated[str, Strict(), _one_of("benchmark", lambda: ["", *_benchmarks()])] = "cmexam"
    # 95% intervals of every metric (qilin_lib.evaluation.intervals): percentile-bootstrap resamples over
    # items for the corpus-level metrics (F1, BLEU, GLEU, ROUGE, Distinct) and the numpy seed that draws them
    bootstrap_resamples: Positive = 1000
    interval_seed: Count = 0
    # checkpoints the repo did not train, evaluated on `benchmarks` (no RAG/VoC/variants) under their name
    external_models: list[ExternalModelConfig] = field(default_factory=list)
    # where the models run: "local" = in-process (qilin_lib.evaluation.scoring); "openai" = an OpenAI-compatible
    # server the user started (vLLM / SGLang; qilin_lib.evaluation.served, README "Served engine") at base_url
    # (e.g. http://localhost:8000/v1), serving the model under `served_model` ("" = the server's first model)
    backend: Literal["local", "openai"] = "local"
    base_url: Str = ""
    served_model: Str = ""
    served_concurrency: Positive = 8      # requests in flight at once


@dataclass(config=STRICT)
class HardwareConfig:
    num_gpus: Count = 0
    bf16: Bool = False
    # Without GPUs: train every stage as this many CPU processes through torchrun (gloo), with the stage's
    # DeepSpeed config where it sets one (DeepSpeed's CPU accelerator); 0 = one process, in-process, no
    # DeepSpeed. paper-smoke sets 2, so that CI runs the paper's multi-process ZeRO-2 path.
    cpu_processes: Count = 0


@dataclass(config=STRICT)
class ProfileConfig:
    name: ProfileName = "tiny"
    description: Str = ""
    seed: Count = 42
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    dcpt: StageConfig = field(default_factory=StageConfig)
    sft: StageConfig = field(default_factory=StageConfig)
    dpo: StageConfig = field(default_factory=StageConfig)
    adapt: StageConfig = field(default_factory=lambda: StageConfig(lora=LoraConfig(enabled=True)))
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    citations: dict[Str, Str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------- loading
_PROFILE = TypeAdapter(ProfileConfig)


def load_config(profile: str = "tiny", overrides: dict | None = None) -> ProfileConfig:
    """Load a shipped profile (or a YAML path) and apply overrides; errors name the offending key."""
    raw = _read_profile(profile)
    for key, value in _flatten(overrides or {}).items():
        _place(raw, key, value)
    raw = _expand_paths(raw)
    try:
        return _PROFILE.validate_python(raw)
    except ValidationError as err:
        raise ConfigError(f"profile {profile!r}: " + "; ".join(_explain(e) for e in _unknown_keys_first(err.errors())[:5])) from None


def _read_profile(profile: str, seen: tuple = ()) -> dict:
    if profile.endswith((".yaml", ".yml")):
        with open(profile, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    elif profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)} or a .yaml path")
    else:
        raw = yaml.safe_load(resources.files("qilin_lib.profiles").joinpath(f"{profile}.yaml").read_text("utf-8"))
    if not isinstance(raw or {}, dict):
        raise ConfigError(f"{profile}: expected a mapping at the top level, got {raw!r}")
    raw = raw or {}
    if "extends" not in raw:
        return raw
    # `extends: paper`: this file lists only what differs from that profile (mappings merged key by key,
    # lists and values replaced whole), so a derived profile cannot drift from its parent unnoticed.
    parent = raw.pop("extends")
    if not isinstance(parent, str) or parent in seen or parent == profile:
        raise ConfigError(f"{profile}: `extends: {parent!r}` must name another profile, without cycles")
    return _merge(_read_profile(parent, (*seen, profile)), raw)


def _merge(base: dict, changes: dict) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        both_maps = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merge(base[key], value) if both_maps else value
    return merged


def _expand_paths(node: Any) -> Any:
    """Expand the `{shared}/` and `{artifacts}/` prefixes of path values (qilin_lib.paths.expand_path)."""
    from .paths import expand_path

    if isinstance(node, dict):
        return {key: _expand_paths(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_paths(value) for value in node]
    return expand_path(node) if isinstance(node, str) else node


def _flatten(overrides: dict, prefix: str = "") -> dict:
    """Nested override dicts become dotted keys, except the value of a dict-valued field (replaced whole)."""
    flat = {}
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not _is_dict_field(dotted):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _is_dict_field(dotted: str) -> bool:
    obj: Any = ProfileConfig()
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(obj) or part not in {f.name for f in dataclasses.fields(obj)}:
            return False
        obj = getattr(obj, part)
    return isinstance(obj, dict)


def _place(raw: dict, dotted: str, value: Any) -> None:
    """Put an override into the raw profile mapping; validation then checks it like any YAML value."""
    parts = dotted.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(parts[:i + 1])!r} is a value, not a section (override {dotted!r})")
    node[parts[-1]] = value


# ------------------------------------------------------------------------------ error messages
_EXPECTED = {"int_type": "int", "float_type": "float", "string_type": "str", "bool_type": "bool",
             "list_type": "list", "dict_type": "mapping", "dataclass_type": "mapping",
             "typed_dict_type": "mapping"}


def _unknown_keys_first(errors: list[dict]) -> list[dict]:
    # a misspelt key also leaves its correct spelling "missing": name the typo first
    return sorted(errors, key=lambda e: e["type"] not in ("unexpected_keyword_argument", "extra_forbidden"))


def _explain(error: dict) -> str:
    """One pydantic error as a line that names the dotted key and, for a bad name, the closest valid one."""
    loc = [part for part in error["loc"] if part != "[key]"]
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "profile"
    kind, value = error["type"], error.get("input")
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        parent = dotted[: -len(str(loc[-1]))]
        valid = _valid_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean {parent + close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        return f"unknown config key {dotted!r}; {hint}"
    if kind == "literal_error":
        valid = re.findall(r"'([^']*)'", error["ctx"]["expected"])
        close = difflib.get_close_matches(str(value), valid, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(valid)}"
        return f"{dotted}: unknown value {value!r}; {hint}"
    if kind in _EXPECTED:
        return f"{dotted}: expected {_EXPECTED[kind]}, got {type(value).__name__} {value!r}"
    if kind == "missing":
        return f"{dotted}: required key missing"
    if kind == "value_error":  # our validators' messages name the value already
        return f"{dotted}: {error['msg'].removeprefix('Value error, ')}"
    return f"{dotted}: {error['msg']} (got {value!r})"


def _valid_keys(loc: list) -> list[str]:
    """The keys a mapping at `loc` may hold: a section's fields, or a source / benchmark spec's keys."""
    names = [part for part in loc if not isinstance(part, int)]
    obj: Any = ProfileConfig()
    for part in names:
        if not dataclasses.is_dataclass(obj):
            break
        obj = getattr(obj, part, None)
    if dataclasses.is_dataclass(obj):
        return [f.name for f in dataclasses.fields(obj)]
    spec = {"sources": SourceSpec, "benchmarks": BenchmarkSpec}.get(names[1] if len(names) > 1 else "")
    return sorted(spec.__annotations__) if spec else []
