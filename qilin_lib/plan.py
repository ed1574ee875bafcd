"""`qilin plan --profile <name>`: parameters, GPU memory and training time of every stage, before a GPU is used.

    qilin plan --profile paper                 # 8x A100-80G at MFU 0.4 (the defaults)
    qilin plan --profile gpu-small --gpu h100 --mfu 0.35 --corpus sft_records=150000

Everything here is arithmetic on the profile; only the parameter counts are exact (the model and its LoRA
adapters are instantiated on the `meta` device, which allocates nothing). The rest are ESTIMATES:

- Model states. DeepSpeed ZeRO-2: DeepSpeed's own estimator (estimate_zero2_model_states_mem_needs in
  deepspeed/runtime/zero/stage_1_and_2.py): 2 bytes/param of bf16 weights on every GPU, plus 18 bytes per
  *trainable* param (bf16 grads 2 + fp32 grads 4 + fp32 master weights 4 + Adam moments 8) sharded over the
  GPUs. For LoRA only the adapters are trainable: the estimator is applied to them, and the frozen base adds
  2 bytes/param (DeepSpeed casts every parameter to bf16). Without DeepSpeed (HF Trainer + torch AdamW):
  weights in the model's dtype, and per trainable param its gradient plus two Adam moments in the param's own
  dtype; peft keeps adapters in fp32 on a bf16 base (autocast_adapter_dtype), so LoRA costs 16 bytes/param.
- Activations: the bytes autograd saves for backward in a transformers Llama decoder layer (RMSNorm, sdpa /
  flash attention, SwiGLU), derived op by op below and checked against a measured forward/backward in
  tests/test_plan.py. The method is Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
  Transformer Models", section 4.1), redone for this layer: no s^2 attention matrix (sdpa and flash keep only
  the log-sum-exp), no dropout in attention, RMSNorm upcasting to fp32, and, for LoRA, frozen weights whose
  inputs autograd does not save. Gradient checkpointing (transformers checkpoints every decoder layer) keeps
  only each layer's input, plus one layer's activations while it is recomputed.
- Logits and loss: DCPT computes transformers' own loss, which upcasts the [tokens, vocab] logits to fp32 and
  saves the fp32 log-softmax. SFT and DPO train through TRL 1.16, whose fused LM head never materialises the
  logits: [4096 tokens x 32768 vocab] tiles, and the final hidden states kept for the backward.
- Time: FLOPs = tokens x per-token FLOPs, at `mfu` of the GPU's dense bf16 peak, the utilisation applied to
  the FLOPs executed (recomputation included). Per token: full fine-tuning 6N (forward 2N, backward 4N);
  LoRA 4N (forward 2N, backward 2N: the gradients of the activations still go through every frozen weight,
  but frozen weights need no weight gradients, the other 2N); gradient checkpointing +2N (a second
  forward); DPO's reference forward +2N (adapters disabled). N counts every parameter, the input embedding
  (a lookup, 3.7% of Baichuan-7B) included, and attention-score FLOPs (2-4% at 512-1024 tokens) are left
  out: the two roughly cancel.
- Steps: the HF Trainer's count (ceil over the data loader, then over gradient accumulation) from corpus
  sizes: results/<profile>/data_stats.json when the data stage has run, else the assumed ChiMed sizes of
  ASSUMED_CHIMED (flag --corpus). SFT/DPO sequences are taken at their full max_source + max_target length
  (batches pad to their longest member): memory and time are upper bounds there.

Not included: the CUDA context and allocator fragmentation (typically 1-3 GiB), DeepSpeed's communication
buckets, transient buffers of the backward (the gradient of one activation at a time).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .config import TRAINING_STAGES, LoraConfig, ProfileConfig, StageConfig, load_config

GiB = 1024 ** 3
STAGE_TITLES = {"dcpt": "DCPT", "sft": "SFT", "dpo": "DPO", "adapt": "adapt"}

# Dense bf16 tensor-core peaks (no 2:4 sparsity), NVIDIA's datasheets: A100 (SXM and PCIe) 312 TFLOP/s;
# H100 SXM 989 TFLOP/s (the datasheet's 1,979 is with sparsity); H200 SXM: the same Hopper compute, 989.
GPUS = {
    "a100": ("A100-80G", 312e12),
    "h100": ("H100 SXM", 989e12),
    "h200": ("H200 SXM", 989e12),
}
DEFAULT_GPU = "a100"
DEFAULT_MFU = 0.4

# TRL 1.16's fused LM head (trl/kernels/chunked_logprob.py TOKEN_CHUNK_SIZE, trl/trainer/utils.py
# _CHUNKED_LOGPROB_CHUNK_SIZE): the logits exist one [4096 tokens x 32768 vocab] tile at a time.
# tests/test_plan.py checks these against the installed TRL.
TRL_TOKEN_TILE = 4096
TRL_VOCAB_TILE = 32768


# ------------------------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class ModelShape:
    name: str
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    max_positions: int
    rms_eps: float
    tie_embeddings: bool
    source: str

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


# Baichuan-7B as converted to a native Llama (qilin_lib/convert.py BAICHUAN_DEFAULTS): the checkpoint's
# config.json (huggingface.co/baichuan-inc/Baichuan-7B): hidden 4096, 32 layers, 32 heads, intermediate 11008,
# vocab 64000, rms eps 1e-6, 4096 positions, untied embeddings; 7,000,559,616 parameters.
KNOWN_SHAPES = {
    "baichuan-inc/Baichuan-7B": ModelShape(
        name="Baichuan-7B", vocab=64000, hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008,
        max_positions=4096, rms_eps=1e-6, tie_embeddings=False,
        source="config.json of baichuan-inc/Baichuan-7B (as qilin_lib/convert.py converts it)"),
}

# Characters per token, to turn the data stage's character counts into tokens. tiny: its tokenizer isolates
# every CJK character (qilin_lib/modeling.py), ~1 token per character (tiny.yaml: 330,744 characters pack into
# ~333k tokens). Baichuan-7B: ASSUMED 1.5 Chinese characters per token for its 64,000-token vocabulary
# (not measured: the tokenizer is not on this machine).
CHARS_PER_TOKEN = {"tiny": 1.0, "baichuan-inc/Baichuan-7B": 1.5}
DEFAULT_CHARS_PER_TOKEN = 1.5


def model_shape(cfg: ProfileConfig) -> ModelShape:
    """The profile's model shape: the tiny factory's, a known hub model's, or a local directory's config.json."""
    model = cfg.model
    if model.name_or_path == "tiny":  # qilin_lib.modeling.build_tiny_model: MHA, tied embeddings
        return ModelShape(name="tiny", vocab=model.vocab_size, hidden=model.hidden_size, layers=model.num_layers,
                          heads=model.num_heads, kv_heads=model.num_heads, intermediate=model.intermediate_size,
                          max_positions=model.max_position_embeddings, rms_eps=1e-6, tie_embeddings=True,
                          source="the profile's model section (qilin_lib.modeling.build_tiny_model); vocab_size "
                                 "is the tokenizer's cap: the trained tiny tokenizer may hold fewer")
    if model.name_or_path in KNOWN_SHAPES:
        return KNOWN_SHAPES[model.name_or_path]
    config_file = Path(model.name_or_path).expanduser() / "config.json"
    if not config_file.is_file():
        raise ValueError(f"qilin plan: the shape of {model.name_or_path!r} is unknown offline: no config.json there "
                         "(a checkpoint that a setup step writes, e.g. `qilin smoke-inputs`, must exist first), "
                         "and not in qilin_lib.plan.KNOWN_SHAPES")
    return shape_from_config(json.loads(config_file.read_text("utf-8")), str(config_file))


def shape_from_config(config: dict, source: str) -> ModelShape:
    """A Llama-family config.json (Baichuan's own config names the same fields)."""
    heads = config["num_attention_heads"]
    return ModelShape(name=Path(source).parent.name or source, vocab=config["vocab_size"],
                      hidden=config["hidden_size"], layers=config["num_hidden_layers"], heads=heads,
                      kv_heads=config.get("num_key_value_heads") or heads,
                      intermediate=config["intermediate_size"],
                      max_positions=config.get("max_position_embeddings", 4096),
                      rms_eps=config.get("rms_norm_eps", 1e-6),
                      tie_embeddings=bool(config.get("tie_word_embeddings", False)), source=source)


def llama_config(shape: ModelShape):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                       num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                       num_key_value_heads=shape.kv_heads, max_position_embeddings=shape.max_positions,
                       rms_norm_eps=shape.rms_eps, tie_word_embeddings=shape.tie_embeddings)


def count_parameters(shape: ModelShape, lora: LoraConfig | None = None) -> tuple[int, int]:
    """(total, trainable) of the model, with the profile's LoRA adapters when given: exact, on the meta device
    (nothing is allocated; a 7B model takes a second). Tied embeddings count once."""
    return _count_parameters(shape, lora.r if lora else 0, lora.target_modules if lora else "")


@functools.lru_cache(maxsize=16)
def _count_parameters(shape: ModelShape, r: int, target_modules: str) -> tuple[int, int]:
    # keyed by what the counts depend on (rank and targets; not alpha or dropout): profile configs don't hash
    import torch
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(llama_config(shape))
    if r:
        from peft import get_peft_model

        from .modeling import lora_config

        model = get_peft_model(model, lora_config(LoraConfig(enabled=True, r=r, target_modules=target_modules)))
    params = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


# ------------------------------------------------------------------------------------- activations
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_targets(lora: LoraConfig) -> tuple[str, ...]:
    """The decoder-layer linears a LoRA config adapts (peft's "all-linear" = all seven; lm_head never)."""
    if lora.target_modules == "all-linear":
        return LINEARS
    wanted = {t.strip() for t in lora.target_modules.split(",")}
    return tuple(name for name in LINEARS if name in wanted)


@dataclass(frozen=True)
class Activations:
    """What autograd saves, per the setting: d = bytes of the activation dtype (2 bf16, 4 fp32)."""
    d: int
    lora: LoraConfig | None = None        # None: full fine-tuning (every weight trainable)
    dropout_mask_bytes: int = 1           # CUDA dropout saves a bool mask; CPU dropout a noise tensor of d bytes


def layer_terms(b: int, s: int, shape: ModelShape, act: Activations) -> dict[str, int]:
    """Bytes one decoder layer saves for backward, by term (transformers' LlamaDecoderLayer, sdpa attention).

    Autograd saves an op's input only where a gradient needs it: mul(a, b) keeps b for a's gradient and a for
    b's; a linear keeps its input only for its *weight* gradient. Hence the difference between full fine-tuning
    and LoRA, whose frozen base weights keep no inputs:
    - RMSNorm (x2): x32 = x.float() (4 bytes) for pow/mul; n = x32 * rsqrt(var) cast back (d) for the weight
      gradient of `weight * n`; y = weight * n (d), the input of the next linears. Frozen: only x32.
    - attention: sdpa / flash save q and k (after RoPE), v, the output (which is o_proj's input: the output is
      laid out so that transpose(1, 2).contiguous() is a view) and the fp32 log-sum-exp per head and query;
      RoPE's cos/sin are shared by every layer (counted once, outside the layers). No [s x s] matrix.
    - SwiGLU: gate output g (SiLU's input), silu(g) and up output u (the product's inputs), the product
      (down_proj's input): 4 x [b, s, f]. Frozen down_proj: the product is not kept.
    - LoRA: each adapted linear's branch lora_B(lora_A(dropout(x))) keeps the dropout mask and output (the
      input of lora_A, whose weight trains) and the r-wide lora_A output. Without dropout the branch keeps x
      itself: one tensor per distinct input (y for q/k/v, y2 for gate/up; o_proj's input is saved anyway).
      The branch runs in the activation dtype: DeepSpeed casts the adapters to bf16, and under the Trainer's
      bf16 autocast lora_A keeps the bf16 copy of its fp32 input. Every layer's input is taken to require
      grad (transformers' enable_input_require_grads for PEFT + checkpointing); without it the first layer
      saves a little less.
    """
    d, bs = act.d, b * s
    bsh, bsf = bs * shape.hidden, bs * shape.intermediate
    kv = shape.kv_heads * shape.head_dim
    terms = {
        "attention q/k/v/out": d * bs * (2 * shape.hidden + 2 * kv),
        "attention log-sum-exp": 4 * b * shape.heads * s,
    }
    if act.lora is None:
        terms["rmsnorm x2"] = 2 * (4 + 2 * d) * bsh
        terms["mlp gate/silu/up/product"] = 4 * d * bsf
        return terms
    terms["rmsnorm x2"] = 2 * 4 * bsh
    terms["mlp gate/silu/up"] = 3 * d * bsf
    targets = lora_targets(act.lora)
    width = {name: shape.hidden for name in LINEARS} | {"down_proj": shape.intermediate}
    if act.lora.dropout > 0:
        terms["lora dropout in/mask"] = (d + act.dropout_mask_bytes) * bs * sum(width[t] for t in targets)
    else:
        shared = ({"q_proj", "k_proj", "v_proj"}, {"gate_proj", "up_proj"}, {"down_proj"})
        terms["lora inputs"] = d * bs * sum(width[next(iter(group))] for group in shared if group & set(targets))
    terms["lora A outputs"] = d * bs * act.lora.r * len(targets)
    return terms


def outside_layer_terms(b: int, s: int, shape: ModelShape, act: Activations, loss: str) -> dict[str, int]:
    """Saved outside the decoder layers: the final RMSNorm, RoPE's cos/sin and the loss's own tensors.

    loss "transformers": the model's ForCausalLMLoss saves the fp32 log-softmax of the upcast logits (the
    logits themselves are not saved: `.float()` and log_softmax's backward need neither).
    loss "trl": TRL's fused LM head keeps the final hidden states (a copy: the shifted, masked positions) and
    two fp32 numbers per token.
    """
    d, bs = act.d, b * s
    terms = {"final rmsnorm": (4 + 2 * d if act.lora is None else 4) * bs * shape.hidden,
             "rotary cos/sin": 2 * d * bs * shape.head_dim}
    if loss == "transformers":
        terms["loss fp32 log-softmax"] = 4 * bs * shape.vocab
    else:
        terms["fused lm-head inputs"] = d * bs * shape.hidden + 2 * 4 * bs
    return terms


def saved_activation_bytes(b: int, s: int, shape: ModelShape, act: Activations, *, loss: str = "transformers",
                           gradient_checkpointing: bool = False) -> int:
    """Bytes saved for backward when the forward ends (what tests/test_plan.py measures with saved-tensor
    hooks). Gradient checkpointing keeps each layer's input (b x s x hidden) instead of its activations."""
    outside = outside_layer_terms(b, s, shape, act, loss)
    if gradient_checkpointing:
        outside.pop("rotary cos/sin")  # inputs of the checkpointed layers, stored by the checkpoint itself
        return shape.layers * act.d * b * s * shape.hidden + sum(outside.values())
    return shape.layers * sum(layer_terms(b, s, shape, act).values()) + sum(outside.values())


def one_layer_bytes(b: int, s: int, shape: ModelShape, act: Activations) -> int:
    """One layer's activations: alive while a checkpointed layer is recomputed in the backward."""
    return sum(layer_terms(b, s, shape, act).values())


def logits_loss_bytes(tokens: int, shape: ModelShape, d: int, loss: str) -> int:
    """Peak bytes of the logits and the loss for one micro-batch (beyond what is saved for backward).

    transformers: the logits in the model dtype (d), their fp32 upcast (no copy when d is 4) and the fp32
    log-softmax, alive together when the loss is computed: tokens x vocab x (d + 4 + 4).
    trl: one [4096 x min(vocab, 32768)] tile of logits in the compute dtype, and the fp32 gradient of the
    hidden states that the fused head's backward accumulates (tokens x hidden x 4).
    """
    if loss == "transformers":
        return tokens * shape.vocab * (d + (4 if d != 4 else 0) + 4)
    return min(tokens, TRL_TOKEN_TILE) * min(shape.vocab, TRL_VOCAB_TILE) * d + tokens * shape.hidden * 4


# ------------------------------------------------------------------------------------ model states
def zero2_estimate(params: int, num_gpus: int) -> int:
    """Per-GPU bytes of ZeRO-2 model states (no offload): DeepSpeed's estimator, 2P + 18P / gpus
    (deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs). The same formula when
    DeepSpeed is not installed; tests/test_plan.py checks the two agree."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its import logs the accelerator choice to stdout
            from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
    except ImportError:
        return 2 * params + int(18 * params / num_gpus)
    _cpu, gpu = estimate_zero2_model_states_mem_needs(params, num_gpus_per_node=num_gpus, num_nodes=1,
                                                      cpu_offload=False)
    return gpu


@dataclass(frozen=True)
class ModelStates:
    bytes: int
    how: str


def model_states(total: int, trainable: int, *, num_gpus: int, zero2: bool, param_bytes: int,
                 lora: bool) -> ModelStates:
    frozen = total - trainable
    if zero2:
        sharded = zero2_estimate(trainable, num_gpus)
        if not lora:
            return ModelStates(sharded, f"DeepSpeed ZeRO-2 estimator: 2P + 18P/{num_gpus}")
        return ModelStates(2 * frozen + sharded,
                           f"frozen base bf16 2 B/param + LoRA via the ZeRO-2 estimator (2 + 18/{num_gpus} B/param)")
    # torch AdamW keeps its moments in the parameter's dtype; peft keeps adapters fp32 on a half-precision base
    trainable_bytes = 4 if lora else param_bytes
    per_trainable = 4 * trainable_bytes        # weight + gradient + 2 Adam moments
    how = (f"frozen base {param_bytes} B/param + LoRA fp32 weight/grad/Adam 16 B/param" if lora else
           f"weights, grads, Adam moments in {'fp32' if param_bytes == 4 else 'bf16'}: {per_trainable} B/param")
    return ModelStates(param_bytes * frozen + per_trainable * trainable, how + " (no DeepSpeed)")


# ----------------------------------------------------------------------------------------- corpora
# ASSUMED sizes of the released ChiMed (huggingface.co/datasets/williamliu/ChiMed) for when the data stage has
# not run. The paper's Tables 1-3 were not readable offline, so these are derived from the released files'
# sizes (the dataset's file listing: cpt.txt 4.85 GB, sft.jsonl 8.35 GB, dpo.json 18.6 MB) and are
# order-of-magnitude inputs, not counts. Run `qilin data --profile paper` and results/paper/data_stats.json
# replaces them; or pass --corpus key=value.
ASSUMED_CHIMED = {
    # 4.85e9 bytes / 3 bytes per UTF-8 CJK character / 1.5 characters per token (CHARS_PER_TOKEN)
    "cpt_tokens": 1_080_000_000,
    # one document per line: ~500 characters (1,500 bytes) a line, assumed
    "cpt_records": 3_200_000,
    # 8.35e9 bytes at ~2.8 kB per JSON line (a ShareGPT conversation, CJK written as \\uXXXX escapes), assumed
    "sft_records": 3_000_000,
    # the authors' mobi_dev/create_dpo_data.py writes 5,000 pairs per run (dataset[5000:10000]); 18.6 MB of
    # indent-4, \\uXXXX-escaped pairs at ~3.7 kB each is the same order
    "dpo_records": 5_000,
}
# PubMedQA PQA-L: 1,000 labelled items, 500 of them the test set; adaptation trains on the other 500.
ADAPT_RECORDS = {"pubmedqa": 500}


@dataclass
class Corpus:
    """Training items per stage (DCPT in tokens, the others in records) and where each number comes from."""
    cpt_tokens: int | None = None
    sft_records: int | None = None
    dpo_records: int | None = None
    adapt_records: int | None = None
    sources: dict[str, str] = field(default_factory=dict)


def data_stats_path(profile: str) -> Path:
    from .paths import repo_root

    return repo_root() / "results" / profile / "data_stats.json"


def corpus_sizes(cfg: ProfileConfig, overrides: dict[str, float] | None = None) -> Corpus:
    """Real counts from results/<profile>/data_stats.json, else ChiMed's assumed sizes (capped by
    data.max_records_per_source), then --corpus overrides."""
    corpus = Corpus()
    stats_file = data_stats_path(cfg.name)
    chars_per_token = CHARS_PER_TOKEN.get(cfg.model.name_or_path, DEFAULT_CHARS_PER_TOKEN)
    if stats_file.is_file():
        stats = json.loads(stats_file.read_text("utf-8"))
        where = f"results/{cfg.name}/data_stats.json"
        corpora = stats.get("corpora", {})
        if "cpt" in corpora:
            corpus.cpt_tokens = round(corpora["cpt"]["chars"] / chars_per_token)
            corpus.sources["cpt_tokens"] = f"{where} characters / {chars_per_token:g} per token"
        for stage in ("sft", "dpo"):
            if stage in corpora:
                setattr(corpus, f"{stage}_records", corpora[stage]["records"])
                corpus.sources[f"{stage}_records"] = where
        adapt = stats.get("eval_sets", {}).get(f"{cfg.evaluation.adapt_benchmark}_train")
        if adapt is not None:
            corpus.adapt_records, corpus.sources["adapt_records"] = adapt, where
    elif cfg.data.generator == "sources" and any(s["loader"].startswith("chimed") for s in cfg.data.sources):
        cap = cfg.data.max_records_per_source
        kept = min(1.0, cap / ASSUMED_CHIMED["cpt_records"]) if cap else 1.0
        corpus.cpt_tokens = round(ASSUMED_CHIMED["cpt_tokens"] * kept)
        corpus.sft_records = min(ASSUMED_CHIMED["sft_records"], cap or math.inf)
        corpus.dpo_records = min(ASSUMED_CHIMED["dpo_records"], cap or math.inf)
        capped = f", capped at {cap:,} records/source" if cap else ""
        for key in ("cpt_tokens", "sft_records", "dpo_records"):
            corpus.sources[key] = f"assumed ChiMed size{capped}"
    if corpus.adapt_records is None and cfg.evaluation.adapt_benchmark in ADAPT_RECORDS:
        corpus.adapt_records = ADAPT_RECORDS[cfg.evaluation.adapt_benchmark]
        corpus.sources["adapt_records"] = f"{cfg.evaluation.adapt_benchmark} labelled non-test items"
    for key, value in (overrides or {}).items():
        if not hasattr(corpus, key) or key == "sources":
            raise ValueError(f"--corpus {key}: valid keys are cpt_tokens, sft_records, dpo_records, adapt_records")
        setattr(corpus, key, int(value))
        corpus.sources[key] = "--corpus"
    return corpus


# -------------------------------------------------------------------------------------- the stages
@dataclass
class StagePlan:
    stage: str
    method: str
    total_params: int
    trainable_params: int
    sequences: int                      # per GPU per micro-batch (DPO: chosen + rejected)
    seq_len: int
    gradient_checkpointing: bool
    states: ModelStates
    activations_full: int               # no checkpointing: everything saved
    activations_checkpointed: int       # layer inputs + one layer recomputed
    logits_loss: int
    reference_forward: int              # DPO: the reference model's no-grad forward (one layer at a time)
    total: int
    tokens_per_step: int
    items: int | None
    items_unit: str
    items_source: str
    steps: int | None
    steps_from_config: bool
    flops_per_token_n: int              # multiples of N (2N forward)
    flops_note: str
    hours: float | None


@dataclass
class ProfilePlan:
    profile: str
    shape: ModelShape
    num_gpus: int
    on_gpu: bool
    activation_bytes: int
    gpu: str
    gpu_peak: float
    mfu: float
    attn_implementation: str
    stages: list[StagePlan]


def sequence_length(stage: str, sc: StageConfig) -> int:
    return sc.block_size if stage == "dcpt" else sc.max_source_length + sc.max_target_length


def optimizer_steps(items: int, per_device: int, num_gpus: int, accumulation: int, epochs: float,
                    max_steps: int) -> int:
    """transformers' Trainer: batches per process, then optimizer steps per epoch (ceil), times epochs (ceil)."""
    if max_steps > 0:
        return max_steps
    batches = math.ceil(math.ceil(items / num_gpus) / per_device)
    per_epoch = max(math.ceil(batches / accumulation), 1)
    return math.ceil(epochs * per_epoch)


def flops_per_token(stage: str, lora: bool, gradient_checkpointing: bool) -> tuple[int, str]:
    """Per-token training FLOPs in units of N (forward = 2N) and how they add up."""
    parts = [("4N LoRA (fwd 2N + bwd 2N)", 4) if lora else ("6N (fwd 2N + bwd 4N)", 6)]
    if gradient_checkpointing:
        parts.append(("2N recompute", 2))
    if stage == "dpo":
        parts.append(("2N reference fwd", 2))
    return sum(n for _, n in parts), " + ".join(text for text, _ in parts)


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-device bytes of one training micro-step."""
    states: ModelStates
    activations_full: int          # no checkpointing: everything saved (+ DPO's reference forward)
    activations_checkpointed: int  # layer inputs + one layer recomputed
    logits_loss: int
    reference_forward: int         # DPO: the reference model's no-grad forward, one layer at a time
    total: int                     # states + activations at the setting used + logits/loss


def stage_memory(stage: str, shape: ModelShape, *, sequences: int, seq_len: int, lora: LoraConfig | None,
                 gradient_checkpointing: bool, d: int, on_gpu: bool, total_params: int, trainable_params: int,
                 num_gpus: int, zero2: bool, param_bytes: int) -> MemoryEstimate:
    """The memory of a training stage (benchmarks/gpu_check.py prints it beside what it measures)."""
    loss = "transformers" if stage == "dcpt" else "trl"
    act = Activations(d=d, lora=lora, dropout_mask_bytes=1 if on_gpu else d)
    layer = one_layer_bytes(sequences, seq_len, shape, act)
    full = saved_activation_bytes(sequences, seq_len, shape, act, loss=loss)
    checkpointed = saved_activation_bytes(sequences, seq_len, shape, act, loss=loss,
                                          gradient_checkpointing=True) + layer
    logits = logits_loss_bytes(sequences * seq_len, shape, d, loss)
    # The reference forward runs after the policy's (TRL's _compute_loss), under no_grad: its working set is
    # at most one layer's activations; with checkpointing it cannot coincide with the recompute (backward).
    reference = layer if stage == "dpo" else 0
    states = model_states(total_params, trainable_params, num_gpus=num_gpus, zero2=zero2, param_bytes=param_bytes,
                          lora=lora is not None)
    activations = checkpointed if gradient_checkpointing else full + reference
    return MemoryEstimate(states=states, activations_full=full + reference, activations_checkpointed=checkpointed,
                          logits_loss=logits, reference_forward=reference,
                          total=states.bytes + activations + logits)


def training_flops_per_token(stage: str, total_params: int, trainable_params: int, lora: bool,
                             gradient_checkpointing: bool) -> float:
    """FLOPs per trained token; LoRA's own FLOPs (0.3% at r 8) are left out, N is the base model's."""
    n_per_token, _ = flops_per_token(stage, lora, gradient_checkpointing)
    return n_per_token * (total_params - trainable_params if lora else total_params)


def plan_stage(cfg: ProfileConfig, stage: str, shape: ModelShape, corpus: Corpus, *, gpu_peak: float,
               mfu: float) -> StagePlan:
    sc: StageConfig = getattr(cfg, stage)
    on_gpu = cfg.hardware.num_gpus > 0
    gpus = max(cfg.hardware.num_gpus, 1)
    d = 2 if on_gpu and (cfg.hardware.bf16 or cfg.model.dtype != "float32") else 4
    lora = sc.lora if sc.lora.enabled else None
    zero2 = on_gpu and sc.deepspeed == "zero2"
    gradient_checkpointing = sc.gradient_checkpointing and on_gpu  # training_kwargs: checkpointing is GPU-only
    total, trainable = count_parameters(shape, lora)
    sequences = sc.per_device_batch_size * (2 if stage == "dpo" else 1)
    seq_len = sequence_length(stage, sc)
    memory = stage_memory(stage, shape, sequences=sequences, seq_len=seq_len, lora=lora,
                          gradient_checkpointing=gradient_checkpointing, d=d, on_gpu=on_gpu, total_params=total,
                          trainable_params=trainable, num_gpus=gpus, zero2=zero2,
                          param_bytes=4 if cfg.model.dtype == "float32" else 2)

    tokens_per_step = sequences * seq_len * gpus * sc.gradient_accumulation_steps
    items, unit = (corpus.cpt_tokens, "tokens") if stage == "dcpt" else (getattr(corpus, f"{stage}_records"),
                                                                          "pairs" if stage == "dpo" else "records")
    source = corpus.sources.get("cpt_tokens" if stage == "dcpt" else f"{stage}_records",
                                "unknown: run `qilin data`, or pass --corpus")
    if sc.max_steps > 0:
        steps = sc.max_steps
    elif items is None:
        steps = None
    else:
        per_item = seq_len if stage == "dcpt" else 1  # DCPT trains on packed blocks of block_size tokens
        steps = optimizer_steps(math.ceil(items / per_item), sc.per_device_batch_size, gpus,
                                sc.gradient_accumulation_steps, sc.epochs, sc.max_steps)
    n_per_token, note = flops_per_token(stage, lora is not None, gradient_checkpointing)
    flops = training_flops_per_token(stage, total, trainable, lora is not None, gradient_checkpointing)
    hours = (flops * tokens_per_step * steps / (gpus * gpu_peak * mfu) / 3600
             if steps is not None and on_gpu else None)
    method = (f"LoRA r{lora.r} {lora.target_modules}" if lora else "full") + (", ZeRO-2" if zero2 else "")
    return StagePlan(stage=stage, method=method, total_params=total, trainable_params=trainable,
                     sequences=sequences, seq_len=seq_len, gradient_checkpointing=gradient_checkpointing,
                     states=memory.states, activations_full=memory.activations_full,
                     activations_checkpointed=memory.activations_checkpointed, logits_loss=memory.logits_loss,
                     reference_forward=memory.reference_forward, total=memory.total,
                     tokens_per_step=tokens_per_step, items=items, items_unit=unit, items_source=source,
                     steps=steps, steps_from_config=sc.max_steps > 0, flops_per_token_n=n_per_token,
                     flops_note=note, hours=hours)


def plan_profile(profile: str, *, gpu: str = DEFAULT_GPU, mfu: float = DEFAULT_MFU,
                 corpus: dict[str, float] | None = None, overrides: dict | None = None) -> ProfilePlan:
    if gpu not in GPUS:
        raise ValueError(f"--gpu {gpu!r}: choose one of {', '.join(GPUS)}")
    if not 0 < mfu <= 1:
        raise ValueError(f"--mfu {mfu}: a fraction in (0, 1]")
    cfg = load_config(profile, overrides)
    shape = model_shape(cfg)
    sizes = corpus_sizes(cfg, corpus)
    gpu_name, peak = GPUS[gpu]
    on_gpu = cfg.hardware.num_gpus > 0
    stages = [plan_stage(cfg, stage, shape, sizes, gpu_peak=peak, mfu=mfu) for stage in TRAINING_STAGES]
    d = 2 if on_gpu and (cfg.hardware.bf16 or cfg.model.dtype != "float32") else 4
    return ProfilePlan(profile=cfg.name, shape=shape, num_gpus=cfg.hardware.num_gpus, on_gpu=on_gpu,
                       activation_bytes=d, gpu=gpu_name, gpu_peak=peak, mfu=mfu,
                       attn_implementation=cfg.model.attn_implementation, stages=stages)


# ------------------------------------------------------------------------------------------- output
def fmt_bytes(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / 2 ** 20:.0f} MiB"


def fmt_count(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:,}"


def fmt_hours(hours: float | None) -> str:
    if hours is None:
        return "n/a"
    if hours * 60 < 1:
        return "**< 1 min**"
    return f"**{hours:.1f}**" if hours >= 1 else f"**{hours * 60:.0f} min**"


def render(plan: ProfilePlan) -> str:
    """The plan as a markdown table (stages as columns); README.md carries this text verbatim."""
    shape = plan.shape
    header = [f"`qilin plan --profile {plan.profile}`: {shape.name} (hidden {shape.hidden}, {shape.layers} layers, "
              f"{shape.heads} heads, intermediate {shape.intermediate}, vocab {shape.vocab})"]
    if plan.on_gpu:
        header += [f"{plan.num_gpus} GPU{'s' if plan.num_gpus > 1 else ''}, activations in "
                   f"{'bf16' if plan.activation_bytes == 2 else 'fp32'}",
                   f"time at an assumed MFU {plan.mfu:g} of the {plan.gpu}'s dense bf16 peak "
                   f"({plan.gpu_peak / 1e12:g} TFLOP/s)"]
    else:
        header += ["CPU (hardware.num_gpus 0), fp32: memory is host RAM, no GPU time"]
    lines = [", ".join(header) + ".", "",
             "| | " + " | ".join(STAGE_TITLES[s.stage] for s in plan.stages) + " |",
             "|---|" + "---|" * len(plan.stages)]

    def row(label: str, cell) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(s) for s in plan.stages) + " |")

    def marked(on: bool) -> str:
        return " *" if on else ""

    row("method", lambda s: s.method)
    row("parameters, total (exact)", lambda s: f"{s.total_params:,}")
    row("parameters, trainable (exact)", lambda s: f"{s.trainable_params:,}")
    row("micro-batch per device, sequences x tokens",
        lambda s: f"{s.sequences} x {s.seq_len}" + (" (chosen + rejected)" if s.stage == "dpo" else ""))
    row("model states per device (estimate)", lambda s: fmt_bytes(s.states.bytes))
    row("activations, no checkpointing (estimate)",
        lambda s: fmt_bytes(s.activations_full) + marked(not s.gradient_checkpointing))
    row("activations, gradient checkpointing (estimate)",
        lambda s: fmt_bytes(s.activations_checkpointed) + marked(s.gradient_checkpointing))
    row("logits + loss (estimate)", lambda s: fmt_bytes(s.logits_loss))
    row("total per device at the * setting (estimate)", lambda s: f"**{fmt_bytes(s.total)}**")
    row("tokens per optimizer step", lambda s: f"{s.tokens_per_step:,}")
    row("corpus", lambda s: f"{fmt_count(s.items)} {s.items_unit}" if s.items is not None else "?")
    row("optimizer steps", lambda s: f"{s.steps:,}" if s.steps is not None else "?")
    row("training FLOPs per token", lambda s: f"{s.flops_per_token_n}N")
    row("hours (estimate)", lambda s: fmt_hours(s.hours))

    notes = ["", "Everything but the parameter counts is an estimate (`qilin_lib/plan.py` says how):", "",
             f"- Model shape: {shape.source}."]
    for s in plan.stages:
        notes.append(f"- {STAGE_TITLES[s.stage]}: model states: {s.states.how}; FLOPs {s.flops_note}; "
                     f"corpus: {s.items_source}{'; steps: ' + s.stage + '.max_steps' if s.steps_from_config else ''}.")
    if any(s.items_source.startswith("assumed") for s in plan.stages):
        notes.append("- Corpus sizes ASSUMED (the paper's counts were not available offline; `ASSUMED_CHIMED` derives "
                     f"them from the released files' sizes): ChiMed-CPT {fmt_count(ASSUMED_CHIMED['cpt_tokens'])} "
                     f"tokens in {fmt_count(ASSUMED_CHIMED['cpt_records'])} documents, ChiMed-SFT "
                     f"{fmt_count(ASSUMED_CHIMED['sft_records'])} records, ChiMed-DPO "
                     f"{ASSUMED_CHIMED['dpo_records']:,} pairs. `qilin data` replaces them with real counts; "
                     "`--corpus key=value` overrides.")
    notes.append("- Activations: what autograd saves in a Llama layer (sdpa/flash: no s x s matrix), the formula "
                 "checked against measured saved tensors in tests/test_plan.py; `*` marks the profile's setting."
                 + (" DPO doubles the batch (chosen + rejected) and adds the reference forward (no grad, one "
                    "layer at a time)." if plan.on_gpu else ""))
    notes.append("- Logits: DCPT uses transformers' loss (fp32 upcast of tokens x vocab logits); SFT/DPO use TRL's "
                 "fused LM head (4096-token tiles). Not counted: CUDA context and allocator slack (1-3 GiB).")
    if plan.attn_implementation == "eager":
        notes.append("- model.attn_implementation is eager: it also saves the b x heads x s x s attention "
                     "probabilities, which these figures leave out.")
    return "\n".join(lines + notes) + "\n"


def parse_corpus(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--corpus {item!r}: expected key=value, e.g. sft_records=200000")
        out[key.strip()] = float(value)
    return out


def main(profile: str, gpu: str = DEFAULT_GPU, mfu: float = DEFAULT_MFU, corpus: list[str] | None = None,
         overrides: dict | None = None) -> str:
    """Entry point of `qilin plan`: the rendered plan."""
    return render(plan_profile(profile, gpu=gpu, mfu=mfu, corpus=parse_corpus(corpus or []),
                               overrides=overrides))


# ------------------------------------------------------------------------------------ evaluation
def eval_sequence_bytes(shape: ModelShape, seq_len: int, param_bytes: int = 2, options: int = 5) -> int:
    """GPU bytes one prompt of `seq_len` tokens costs the in-process Scorer (qilin_lib.evaluation.scoring), an
    ESTIMATE: its KV cache (2 x layers x kv_heads x head_dim x seq_len) once for the context and once per
    continuation that cloze/VoC copy it to (`options`, `_reorder`), plus one decoder layer's transient
    activations in the prefill (residual and norm copies 4 x hidden, the SwiGLU's gate, up and product
    3 x intermediate, per token) and the fp32 log-softmax of the last position (`logits_to_keep=1`)."""
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * seq_len * param_bytes
    transient = seq_len * (4 * shape.hidden + 3 * shape.intermediate) * param_bytes
    return kv * (1 + options) + transient + 2 * shape.vocab * 4


def eval_batch_size(shape: ModelShape, seq_len: int, free_bytes: int, param_bytes: int = 2, *,
                    headroom: float = 0.85, cap: int = 256) -> int:
    """`evaluation.batch_size: 0` on a GPU: the prompts per batch that fit in `free_bytes` (what is free after
    the weights are loaded), keeping (1 - headroom) for the allocator and CUDA workspaces; at least 1."""
    return max(1, min(cap, int(free_bytes * headroom) // eval_sequence_bytes(shape, seq_len, param_bytes)))
