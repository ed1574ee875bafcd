"""Baichuan-7B (hub remote code) -> a native `LlamaForCausalLM` + fast tokenizer directory, once (DESIGN.md 7).

Why: Baichuan-7B's hub code breaks under the pinned transformers 5 (tokenizer init order, RoPE buffers left
uninitialised after loading -> NaN logits, sdpa refused, tuple KV cache). The network itself is a LLaMA
(RMSNorm, RoPE with `rotate_half`, SwiGLU), so converted, every stage loads it with plain `from_pretrained`
and no `trust_remote_code`. Tests compare the result with the authors' code in
shared/models/baichuan7b_reference/.

- Weights: key names in `modeling_baichuan.py` already equal Llama's, except the fused attention input
  `W_pack` = Linear(hidden, 3 * hidden) whose output rows are [q; k; v] (`Attention.forward` unflattens
  them to (3, hidden)): it is split into q_proj / k_proj / v_proj. `rotary_emb.inv_freq` is a persistent
  buffer there, hence in the checkpoint; Llama recomputes it from rope_theta, so it is checked and dropped.
  Shards are streamed: memory follows one output shard, not the 7B model.
- Tokenizer: tokenizer.json built by transformers' own SentencePiece conversion
  (`SpmConverter.build_tokenizer_from_spm_proto`), which follows the model file's protobuf: the normaliser
  (Baichuan: identity, i.e. no charsmap), `add_dummy_prefix`, `remove_extra_whitespaces`, byte fallback,
  BPE merges ranked by piece score, user-defined pieces kept whole. The class is the generic
  `TokenizersBackend`: `LlamaTokenizer` would rebuild the backend with its own pre-tokenizer (always a
  dummy prefix) and, from a vocab file alone, silently with an empty vocabulary.
- LoRA r=8 at the 7B shape (tests/test_convert_baichuan.py counts them with peft): all linear layers
  17,891,328 on the fused W_pack vs 19,988,480 on split q/k/v; attention input only 4,194,304 (W_pack)
  vs 6,291,456 (q, k, v). The split model gives q, k and v each their own low-rank update.
- The model step (`converted_base_model`, what `base_model_dir` returns for a profile with
  `model.convert: baichuan`): the profile's checkpoint, a local directory or a hub id, converted once into
  the `base_model` artifact. From the hub only the files read here are downloaded, as data: no remote code
  runs, so an unpinned `model.revision` (the latest commit) is allowed.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import torch
from huggingface_hub import snapshot_download
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, TokenizersBackend
from transformers.convert_slow_tokenizer import SentencePieceExtractor, SpmConverter

from .cache import StageArtifact, hash_obj
from .paths import source_hash

if TYPE_CHECKING:
    from .config import ProfileConfig

# BaiChuanConfig's defaults (configuration_baichuan.py: the 7B model), for fields a config.json leaves out
BAICHUAN_DEFAULTS = dict(vocab_size=64000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, hidden_act="silu", max_position_embeddings=4096,
                         initializer_range=0.02, rms_norm_eps=1e-6, use_cache=True, pad_token_id=0,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
ROPE_THETA = 10000.0  # modeling_baichuan.py: RotaryEmbedding(base=10000), not a config field
# weights whose modeling_baichuan.py names are Llama's too
SAME_NAME = re.compile(r"model\.(embed_tokens|norm)\.weight|lm_head\.weight|model\.layers\.\d+\.(self_attn\.o_proj"
                       r"|mlp\.(gate|up|down)_proj|input_layernorm|post_attention_layernorm)\.weight")
MAX_SHARD_BYTES = 5 * 2**30
# The files the converter reads: all a hub snapshot downloads (one weight format, never the remote code)
META_FILES = ["config.json", "tokenizer.model", "tokenizer_config.json"]
SAFETENSORS_FILES = ["model*.safetensors", "model.safetensors.index.json"]
BIN_FILES = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]


def convert_baichuan(src: str | Path, dst: str | Path, max_shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """Convert the remote-code checkpoint `src` into `dst` (new or empty), loadable without remote code."""
    src, dst = Path(src), Path(dst)
    check_source(src)
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{dst} is not empty: old shards there would mix with the converted ones")
    dst.mkdir(parents=True, exist_ok=True)
    config = llama_config({**BAICHUAN_DEFAULTS, **json.loads((src / "config.json").read_text("utf-8"))})
    weight_map, dtypes = _write_shards(_converted_tensors(src, config), dst, max_shard_bytes)
    _check_complete(weight_map, config)
    if len(dtypes) == 1:  # what from_pretrained(dtype="auto") loads in: the stored weights' dtype
        config.dtype = dtypes.pop()
    config.save_pretrained(dst)
    convert_tokenizer(src).save_pretrained(dst)
    return dst


# ------------------------------------------------------------------------------------------- config
def llama_config(source: dict) -> LlamaConfig:
    """The LlamaConfig of a BaiChuanConfig dict: same dims, eps, special ids, untied embeddings, RoPE base."""
    keep = {k: source[k] for k in BAICHUAN_DEFAULTS}
    return LlamaConfig(**keep, num_key_value_heads=source["num_attention_heads"], attention_bias=False,
                       mlp_bias=False, rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
                       architectures=["LlamaForCausalLM"])


# ------------------------------------------------------------------------------------------ weights
def check_source(src: Path, label: str | None = None, weights: bool = True) -> None:
    """Fail before anything is written (or, for a hub snapshot, downloaded) when `src` is no Baichuan
    checkpoint; the error names the source (`label`, else the path) and everything it lacks."""
    name = label or str(src)
    missing = [f for f in ("config.json", "tokenizer.model") if not (src / f).is_file()]
    if weights:
        shards = _source_shards(src)
        missing += [f"{p.name} (listed in its index)" for p in shards if not p.is_file()]
        if not shards:
            missing.append("weights (model.safetensors / pytorch_model.bin, or a sharded index)")
    if missing:
        raise FileNotFoundError(f"{name}: not a convertible Baichuan checkpoint, missing {', '.join(missing)}")
    model_type = json.loads((src / "config.json").read_text("utf-8")).get("model_type")
    if model_type != "baichuan":
        raise ValueError(f"{name}: config.json has model_type {model_type!r}, expected 'baichuan'")


def _source_shards(src: Path) -> list[Path]:
    """The weight files, from an index if there is one; [] if there are none."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (src / index).is_file():
            weight_map = json.loads((src / index).read_text("utf-8"))["weight_map"]
            return [src / name for name in dict.fromkeys(weight_map.values())]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (src / single).is_file():
            return [src / single]
    return []


def _tensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """One shard's tensors, read one by one (mmap), not the whole shard at once."""
    if path.suffix == ".safetensors":
        with safe_open(path, framework="pt") as shard:
            for name in shard.keys():
                yield name, shard.get_tensor(name)
    else:
        yield from torch.load(path, map_location="cpu", weights_only=True, mmap=True).items()


def _converted_tensors(src: Path, config: LlamaConfig) -> Iterator[tuple[str, torch.Tensor]]:
    hidden, head_dim = config.hidden_size, config.hidden_size // config.num_attention_heads
    expected_inv_freq = 1.0 / ROPE_THETA ** (torch.arange(0, head_dim, 2).float() / head_dim)
    for shard in _source_shards(src):
        for name, tensor in _tensors(shard):
            if name.endswith(".self_attn.rotary_emb.inv_freq"):
                if not torch.allclose(tensor.float(), expected_inv_freq, rtol=1e-3):
                    raise ValueError(f"{name}: not RoPE base {ROPE_THETA:g}; the Llama config would differ")
            elif name.endswith(".self_attn.W_pack.weight"):
                if tensor.shape != (3 * hidden, hidden):
                    raise ValueError(f"{name}: shape {tuple(tensor.shape)}, expected {(3 * hidden, hidden)}")
                prefix = name.removesuffix("W_pack.weight")
                for part, rows in zip(("q_proj", "k_proj", "v_proj"), tensor.split(hidden)):
                    yield f"{prefix}{part}.weight", rows.contiguous()
            elif SAME_NAME.fullmatch(name):
                yield name, tensor.contiguous()
            else:
                raise ValueError(f"{shard.name}: unexpected weight {name!r} (not in modeling_baichuan.py)")


def _write_shards(tensors: Iterable[tuple[str, torch.Tensor]], dst: Path,
                  max_bytes: int) -> tuple[dict[str, str], set[torch.dtype]]:
    """Safetensors shards of at most max_bytes (a bigger single tensor gets its own), named once their count
    is known; returns the weight map and the dtypes written."""
    shards: list[dict[str, None]] = []
    current: dict[str, torch.Tensor] = {}
    size = total = 0
    dtypes = set()

    def flush():
        save_file(current, dst / f"part-{len(shards)}.tmp", metadata={"format": "pt"})
        shards.append(dict.fromkeys(current))

    for name, tensor in tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > max_bytes:
            flush()
            current, size = {}, 0
        current[name], size, total = tensor, size + nbytes, total + nbytes
        dtypes.add(tensor.dtype)
    if current:
        flush()
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    weight_map = {}
    for i, (keys, name) in enumerate(zip(shards, names)):
        (dst / f"part-{i}.tmp").rename(dst / name)
        weight_map |= dict.fromkeys(keys, name)
    if len(shards) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), "utf-8")
    return weight_map, dtypes


def _check_complete(weight_map: dict[str, str], config: LlamaConfig) -> None:
    with torch.device("meta"):  # names only: no memory for the 7B shape
        wanted = set(LlamaForCausalLM(config).state_dict())
    missing, extra = wanted - weight_map.keys(), weight_map.keys() - wanted
    if missing or extra:
        raise ValueError(f"converted weights differ from LlamaForCausalLM: missing {sorted(missing)[:5]}, "
                         f"extra {sorted(extra)[:5]}")


# ---------------------------------------------------------------------------------------- tokenizer
def convert_tokenizer(src: str | Path) -> TokenizersBackend:
    """Fast tokenizer from src/tokenizer.model, special tokens and add_bos/eos from src/tokenizer_config.json."""
    src = Path(src)
    proto = SentencePieceExtractor(str(src / "tokenizer.model")).proto
    if proto.trainer_spec.model_type != 2:
        raise ValueError(f"{src}/tokenizer.model is not a SentencePiece BPE model (Baichuan's is)")
    vocab = {piece.piece: i for i, piece in enumerate(proto.pieces)}
    # legacy=True: every chunk between special tokens gets its own dummy prefix, as BaiChuanTokenizer does by
    # calling sp_model.encode on each chunk
    backend = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)
    settings_path = src / "tokenizer_config.json"
    settings = json.loads(settings_path.read_text("utf-8")) if settings_path.is_file() else {}

    def token(key: str, default: str | None) -> str | None:
        value = settings.get(key, default)
        return value["content"] if isinstance(value, dict) else value  # AddedToken dicts of transformers 4

    # defaults as in tokenization_baichuan.py's BaiChuanTokenizer.__init__
    return TokenizersBackend(tokenizer_object=backend, unk_token=token("unk_token", "<unk>"),
                             bos_token=token("bos_token", "<s>"), eos_token=token("eos_token", "</s>"),
                             pad_token=token("pad_token", None), add_bos_token=settings.get("add_bos_token", True),
                             add_eos_token=settings.get("add_eos_token", False),
                             clean_up_tokenization_spaces=settings.get("clean_up_tokenization_spaces", False))


# ---------------------------------------------------------------------------------- the model step
def converted_base_model(cfg: ProfileConfig, force: bool = False) -> Path:
    """`cfg.model.name_or_path` (a local Baichuan checkpoint, or a hub id at `cfg.model.revision`, empty =
    the latest commit) converted once into the `base_model` artifact; returns its directory. The key is the
    source's identity (the hub commit, or the local files' names, sizes and mtimes: retrained weights keep
    their sizes) and this module's source: a new snapshot or a converter fix converts again. A hub source
    costs one small download (config and tokenizer, which fix the commit) when the artifact exists."""
    source = cfg.model.name_or_path
    if source == "tiny":
        raise ValueError("model.convert converts a checkpoint; the tiny model is built by the repo (convert: '')")
    hub = not Path(source).expanduser().exists()  # the rule of modeling.hub_kwargs and hub.needs_hub
    if hub and source.startswith(("/", "./", "../", "~")):  # a path, never a hub id: say so, not "bad repo id"
        raise FileNotFoundError(f"model.name_or_path {source}: no such checkpoint directory (the paper-smoke "
                                "profile's is written by `qilin smoke-inputs`)")
    if hub:
        # snapshot directories are named by their commit: a moving revision is resolved once, here
        src = _snapshot(source, cfg.model.revision or None, META_FILES)
        label, identity = f"{source} at commit {src.name}", {"commit": src.name}
        check_source(src, label, weights=False)  # before gigabytes of weights are downloaded
    else:
        src = Path(source).expanduser().resolve()
        source = label = str(src)
        identity = {"files": _local_identity(src)}
    config = {"convert": cfg.model.convert, "source": source, "code": source_hash("convert.py")}
    art = StageArtifact(cfg.name, "base_model", config=config, inputs=identity)
    if art.complete and not force:
        return art.path
    if hub:
        src = _snapshot(source, src.name, META_FILES + SAFETENSORS_FILES)
        if not _source_shards(src):  # Baichuan-7B ships pytorch_model.bin only
            src = _snapshot(source, src.name, META_FILES + BIN_FILES)
    check_source(src, label)
    with art.writing() as out:
        convert_baichuan(src, out)
    return art.path


def _snapshot(repo_id: str, revision: str | None, patterns: list[str]) -> Path:
    return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))


def _local_identity(src: Path) -> str:
    files = [p for p in src.iterdir() if p.is_file()
             and any(fnmatch(p.name, pattern) for pattern in META_FILES + SAFETENSORS_FILES + BIN_FILES)]
    return hash_obj(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
