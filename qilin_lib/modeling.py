"""Models and tokenizers: loading (hub id or local dir), the tiny factory, LoRA configs, adapter merge.

- `load_model_and_tokenizer` loads any causal LM the same way for every stage: dtype and attention from
  the profile, with loud fallbacks (bfloat16 -> float32 on CPU, flash-attention -> sdpa when not
  importable) instead of crashes, a pad token for batching and the profile's chat template. Every load
  runs a probe forward pass: a checkpoint whose logits are not finite (a NaN weight, Baichuan's remote code
  under transformers 5 with its RoPE buffers left uninitialised) fails there, naming its non-finite
  tensors, instead of training or scoring on NaN without an error.
- The tiny factory (DESIGN.md section 3) makes the offline profile's base model: a byte-level BPE trained
  on the generated corpus and a few-million-parameter Llama, cached as one artifact. The pre-tokenizer
  isolates every CJK character *before* BPE merges. Otherwise frequent Chinese words ("高血压", "头痛")
  merge into multi-character tokens: each fact is then spelled with its own rare tokens, the tiny model
  sees every token only a few times and cannot share what it learns about "头" between "头痛" and
  "头晕". Merges still happen inside runs of Latin text and inside one character's UTF-8 bytes.
- The chat template wraps assistant turns in `{% generation %}` so that
  `apply_chat_template(..., return_assistant_tokens_mask=True)` yields the SFT loss mask.
- LoRA helpers: the peft config from the profile, and merge_adapter (the authors merge the SFT adapter
  into the CPT model before DPO).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
import re
from pathlib import Path
from typing import Callable, Iterable

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM,
                          PreTrainedTokenizerFast)

from .cache import StageArtifact
from .chat_templates import use_chat_template
from .config import LoraConfig, ModelConfig, ProfileConfig
from .paths import source_hash

log = logging.getLogger(__name__)

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
CHAT_MARKERS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
SPECIAL_TOKENS = (BOS, EOS, PAD, UNK, *CHAT_MARKERS)  # ids 0..7 in this order
END_OF_TURN = "<|end|>"
PROBE_TEXT = "高血压患者常有头痛。Fever 39C"  # a few tokens of any vocabulary: CJK, Latin, digits
# What a pretrained medical LM must predict far better than chance (model.max_probe_perplexity).
PERPLEXITY_PROBE = "高血压是一种常见的慢性病，患者常有头痛、头晕等症状，应按时服药并定期监测血压。"

# CJK symbols/punctuation, Extension A, unified ideographs, compatibility ideographs, fullwidth forms
# (，：？ live there), Extension B.
CJK_CHAR = "[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0002a6df]"

# The assistant's content and its <|end|> are inside {% generation %}: the model must learn to stop.
# Newlines are {{ '\n' }} because the renderer's trim_blocks would eat a literal one after a block tag.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{% else %}{{ message['content'] }}<|end|>{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


# ----------------------------------------------------------------------------------------- loading
def _resolve_device(device) -> torch.device:
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():  # under accelerate/torchrun each process takes its own GPU
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"model.dtype: unknown dtype {name!r}")
    if dtype in (torch.bfloat16, torch.float16):
        if device.type == "cpu":  # half-precision CPU kernels are slow or missing; training drifts
            log.warning("model.dtype=%s is not used on CPU; loading in float32", name)
            return torch.float32
        if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            log.warning("this GPU has no bfloat16; loading in float32")
            return torch.float32
    return dtype


def _resolve_attn(name: str, device: torch.device) -> str:
    if name == "flash_attention_2":
        if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
            return name
        log.warning("flash_attention_2 needs CUDA and the flash_attn package; using sdpa")
        return "sdpa"
    return name


def hub_kwargs(model_cfg: ModelConfig, source: str) -> dict:
    """trust_remote_code (an explicit False never prompts on stdin; None would) and, for a hub id, the
    profile's revision. Remote code from the hub runs only at a pinned commit: what runs is what was read."""
    trust = bool(model_cfg.trust_remote_code)
    if Path(source).expanduser().exists():  # a local checkpoint (its code is on disk to read)
        return {"trust_remote_code": trust}
    if trust and not re.fullmatch(r"[0-9a-f]{40}", model_cfg.revision):
        raise ValueError(f"{source}: model.trust_remote_code runs code from the hub; pin model.revision to a "
                         f"commit (40 hex digits, e.g. HfApi().model_info({source!r}).sha), not "
                         f"{model_cfg.revision or 'the moving main branch'!r}")
    return {"trust_remote_code": trust, "revision": model_cfg.revision or None}


def load_model_and_tokenizer(model_cfg: ModelConfig, path_or_id: str | None = None, *, device=None,
                             padding_side: str = "right"):
    """Load (model, tokenizer) from a hub id or local dir; pass padding_side="left" for generation."""
    source = str(path_or_id or model_cfg.name_or_path)
    if source == "tiny":
        raise ValueError("model 'tiny' is built by tiny_base_model(cfg, ...); pass the directory it returns")
    dev = _resolve_device(device)
    hub = hub_kwargs(model_cfg, source)
    try:  # the config first: cheap, and where a remote-code checkpoint fails
        config = AutoConfig.from_pretrained(source, **hub)
        tokenizer = AutoTokenizer.from_pretrained(source, **hub)
        model = AutoModelForCausalLM.from_pretrained(
            source, config=config, **hub, dtype=_resolve_dtype(model_cfg.dtype, dev),
            attn_implementation=_resolve_attn(model_cfg.attn_implementation, dev))
    except ValueError as err:
        if "trust_remote_code" in str(err) and not hub["trust_remote_code"]:
            raise ValueError(f"{source} ships its own modeling code: set `model.trust_remote_code: true` and a "
                             "pinned `model.revision` to run it (for Baichuan-7B set `model.convert: baichuan` "
                             "instead: it becomes a native Llama)") from err
        raise
    if tokenizer.pad_token is None:  # Llama/Baichuan have none; eos is safe because labels mask padding
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    use_chat_template(tokenizer, model_cfg.chat_template)
    for cfg in (model.config, model.generation_config):
        if getattr(cfg, "pad_token_id", None) is None:
            cfg.pad_token_id = tokenizer.pad_token_id
    model = model.to(dev)
    check_finite(model, tokenizer, source)
    if model_cfg.max_probe_perplexity:
        check_perplexity(model, tokenizer, source, model_cfg.max_probe_perplexity)
    return model, tokenizer


class BrokenModelError(RuntimeError):
    """A loaded model whose probe forward pass shows it is broken."""


class NonFiniteModelError(BrokenModelError):
    """A loaded model gives NaN/inf logits."""


def _probe_logits(model, ids: list[int]):
    """Logits of one probe sequence, changing neither the RNG streams (forked) nor the model (no grad, no
    cache, train/eval mode restored): a run with the checks gives the numbers it gave without them."""
    device = next(model.parameters()).device
    was_training = model.training
    forked = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=forked), torch.no_grad():
            model.eval()
            return model(input_ids=torch.tensor([ids], device=device), use_cache=False).logits.float()
    finally:
        model.train(was_training)


def check_perplexity(model, tokenizer, source: str, bound: float) -> float:
    """Raise BrokenModelError when a pretrained model's perplexity on a medical sentence exceeds `bound`.
    Finite garbage (RoPE buffers left uninitialised, a wrong weight mapping) passes the finiteness check but
    predicts near chance, i.e. near the vocabulary size; a working 7B base scores in the tens."""
    ids = tokenizer(PERPLEXITY_PROBE, add_special_tokens=False)["input_ids"]
    logits = _probe_logits(model, ids)[0, :-1]
    ppl = math.exp(torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:], device=logits.device)).item())
    if not ppl <= bound:
        raise BrokenModelError(f"{source}: perplexity {ppl:.1f} on a {len(ids)}-token medical probe exceeds "
                               f"model.max_probe_perplexity {bound:g} (chance is ~{len(tokenizer):,}): the weights "
                               "or the modeling code do not fit together; check the conversion or loading path")
    return ppl


def check_finite(model, tokenizer, source: str) -> None:
    """Raise NonFiniteModelError, naming the non-finite tensors, unless a probe gives finite logits."""
    ids = tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"][:8] or [tokenizer.eos_token_id]
    logits = _probe_logits(model, ids)
    if torch.isfinite(logits).all():
        return
    bad = [name for name, t in (*model.named_parameters(), *model.named_buffers())
           if t.is_floating_point() and not torch.isfinite(t).all()]
    names = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    where = (f"non-finite values in {names}" if bad else "every parameter and buffer is finite, so the forward "
             "pass itself makes them (buffers the loader left uninitialised, an unsupported attention path, "
             "overflow in the dtype)")
    hint = ("; Baichuan's hub code breaks under transformers 5: set `model.convert: baichuan` (or run "
            "`qilin convert baichuan SRC DST` and load DST)" if model.config.model_type == "baichuan" else "")
    raise NonFiniteModelError(f"{source}: a {len(ids)}-token probe forward pass gives non-finite logits; "
                              f"{where}{hint}")


# ------------------------------------------------------------------------------------ tiny factory
def _jieba_dictionary_words() -> Iterable[str]:
    spec = importlib.util.find_spec("jieba")  # read the bundled file without initialising jieba
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("use_jieba_dict=True needs the jieba package")
    path = Path(list(spec.submodule_search_locations)[0]) / "dict.txt"
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield line.split()[0]


def build_tiny_tokenizer(texts: Iterable[str], vocab_size: int, save_dir=None, *, model_max_length: int = 512,
                         use_jieba_dict: bool = False) -> PreTrainedTokenizerFast:
    """Byte-level BPE with every CJK character isolated before merging (see the module docstring)."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CJK_CHAR), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = list(texts)
    if use_jieba_dict:  # more characters get a whole token, not only those the tiny corpus uses
        corpus.extend(_jieba_dictionary_words())
    tok.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=list(CHAT_MARKERS), model_max_length=model_max_length,
        chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False)
    if save_dir is not None:
        tokenizer.save_pretrained(save_dir)
    return tokenizer


def build_tiny_model(model_cfg: ModelConfig, tokenizer, seed: int) -> LlamaForCausalLM:
    """A small Llama sized by the profile; the same seed gives the same weights."""
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=model_cfg.hidden_size,
        num_hidden_layers=model_cfg.num_layers, num_attention_heads=model_cfg.num_heads,
        num_key_value_heads=model_cfg.num_heads, intermediate_size=model_cfg.intermediate_size,
        max_position_embeddings=model_cfg.max_position_embeddings, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    config._attn_implementation = _resolve_attn(model_cfg.attn_implementation, torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    # Chat generation stops at the end-of-turn marker as well as at eos.
    end_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, end_id]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def tiny_base_model(cfg: ProfileConfig, texts: Iterable[str] | Callable[[], Iterable[str]], input_hash: str,
                    force: bool = False, *, use_jieba_dict: bool = False) -> Path:
    """Build the tiny tokenizer + untrained model once per (model config, seed, corpus); return its dir.

    `texts` may be a callable so that a cache hit never generates the corpus. The key covers this module's
    source: a fix to the tokenizer or the model initialisation rebuilds it."""
    config = {**dataclasses.asdict(cfg.model), "seed": cfg.seed, "jieba_dict": use_jieba_dict,
              "code": source_hash("modeling.py")}
    art = StageArtifact(cfg.name, "base_model", config=config, inputs={"corpus": input_hash})
    if art.complete and not force:
        log.info("reusing tiny base model %s", art.path)
        return art.path
    corpus = texts() if callable(texts) else texts
    tokenizer = build_tiny_tokenizer(corpus, cfg.model.vocab_size, use_jieba_dict=use_jieba_dict,
                                     model_max_length=cfg.model.max_position_embeddings)
    model = build_tiny_model(cfg.model, tokenizer, cfg.seed)
    trainable, total = count_parameters(model)
    with art.writing(extra={"parameters": total, "vocab_size": len(tokenizer)}) as out:
        tokenizer.save_pretrained(out)
        model.save_pretrained(out)
    log.info("built tiny base model (%d parameters, vocab %d) at %s", total, len(tokenizer), art.path)
    return art.path


# ------------------------------------------------------------------------------------------- LoRA
def lora_config(lora: LoraConfig, task: str = "CAUSAL_LM"):
    """peft LoraConfig from the profile; target_modules "all-linear" or a comma-separated list."""
    import peft

    targets = lora.target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    return peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                           target_modules=targets, bias="none", task_type=task)


def merge_adapter(base_dir, adapter_dir, out_dir, *, model_cfg: ModelConfig | None = None, device=None) -> Path:
    """Load base + adapter, fold the adapter into the weights, save model and tokenizer to out_dir."""
    from peft import PeftModel

    model, tokenizer = load_model_and_tokenizer(model_cfg or ModelConfig(), str(base_dir), device=device)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    if (Path(adapter_dir) / "tokenizer_config.json").exists():  # trainers save the tokenizer they used
        tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir),
                                                  trust_remote_code=bool((model_cfg or ModelConfig()).trust_remote_code))
    out = Path(out_dir)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total); tied embeddings are counted once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
