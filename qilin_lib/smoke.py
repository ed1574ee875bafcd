"""Inputs of the `paper-smoke` profile: what the paper run downloads, made here at CPU size.

The `paper` profile downloads Baichuan-7B (remote-code checkpoint: config.json, weights, SentencePiece
tokenizer.model) and the PubMedQA test split. `qilin smoke-inputs` writes stand-ins of the same formats:

- a random-weight Baichuan checkpoint built with Baichuan-7B's own modeling and config classes from
  ../shared/models/baichuan7b_reference (imported in place, never copied), in the hub's file layout, with
  a SentencePiece model trained on the ChiMed-layout samples with Baichuan's documented settings (BPE,
  normalisation off, digits split, byte fallback, the baichuan-chat markers as user-defined pieces). The
  model step then converts it exactly as it converts the real one (qilin_lib/convert.py).
- a `test_ground_truth.json` naming half of the shared PubMedQA items as the test split (the shared sample
  holds only the official non-test half; the real file names 500 other PMIDs), so that evaluation and task
  adaptation get both of their splits.

Only sizes differ from the real inputs: the tests of qilin_lib/convert.py use the same checkpoint writer.
Building needs nothing but the reference code and the samples; writing leaves nothing half-made
(a temporary directory renamed into place).
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import tempfile
import types
from pathlib import Path

from .paths import artifacts_root, shared_dir

SMOKE_PROFILE = "paper-smoke"
VOCAB = 4000
# Baichuan-7B is hidden 4096, 32 layers, 32 heads, intermediate 11008, vocab 64000, max_position 4096;
# the smoke model keeps the architecture and the position range and shrinks everything else.
SHAPE = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=4096)
RESERVED = ["<reserved_102>", "<reserved_103>"]  # the baichuan-chat prompt markers


def smoke_inputs_dir() -> Path:
    """Where `qilin smoke-inputs` writes and the paper-smoke profile reads ({artifacts}/paper-smoke/inputs)."""
    return artifacts_root() / SMOKE_PROFILE / "inputs"


def reference_modules(reference: Path) -> types.SimpleNamespace:
    """Baichuan-7B's configuration/modeling/tokenization files as a package (modeling_baichuan.py imports
    `.configuration_baichuan`), imported from where they are."""
    if not (reference / "modeling_baichuan.py").is_file():
        raise FileNotFoundError(f"{reference}: Baichuan-7B's reference code (modeling_baichuan.py) is not there")
    package = types.ModuleType("baichuan7b_reference")
    package.__path__ = [str(reference)]
    sys.modules.setdefault(package.__name__, package)
    return types.SimpleNamespace(**{name: importlib.import_module(f"baichuan7b_reference.{name}_baichuan")
                                    for name in ("configuration", "modeling", "tokenization")})


def chimed_texts(chimed_format: Path) -> list[str]:
    """Every document of cpt.txt and every turn of sft.jsonl: the tokenizer's training text."""
    texts = [line for line in (chimed_format / "cpt.txt").read_text("utf-8").splitlines() if line]
    for line in (chimed_format / "sft.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            texts += [turn["value"] for turn in json.loads(line)["conversations"] if turn["value"]]
    return texts


def write_random_baichuan(dst: Path, reference: Path, texts: list[str], *, dummy_prefix: bool = True,
                          sharded: bool = False, seed: int = 0) -> Path:
    """A random-weight remote-code Baichuan checkpoint in `dst` as on the hub: config.json (with auto_map),
    weights (one pytorch_model.bin, or two safetensors shards with an index), tokenizer.model,
    tokenizer_config.json."""
    import sentencepiece as spm
    import torch
    from safetensors.torch import save_file

    ref = reference_modules(reference)
    dst.mkdir(parents=True, exist_ok=True)
    # Baichuan-7B README: BPE, normalisation off, digits split, byte fallback for rare characters
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(dst / "tokenizer"), model_type="bpe", vocab_size=VOCAB,
        normalization_rule_name="identity", split_digits=True, byte_fallback=True, add_dummy_prefix=dummy_prefix,
        remove_extra_whitespaces=False, user_defined_symbols=RESERVED, num_threads=1, minloglevel=2)
    (dst / "tokenizer.vocab").unlink()
    # Baichuan-7B's tokenizer_config.json: its pre-training appended only EOS per document
    (dst / "tokenizer_config.json").write_text(json.dumps({
        "auto_map": {"AutoTokenizer": ["tokenization_baichuan.BaiChuanTokenizer", None]},
        "tokenizer_class": "BaiChuanTokenizer", "add_bos_token": False, "add_eos_token": False,
        "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False, "normalized": True,
                      "rstrip": False, "single_word": False},
        "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None, "clean_up_tokenization_spaces": False}))

    config = ref.configuration.BaiChuanConfig(vocab_size=VOCAB, **SHAPE)
    torch.manual_seed(seed)
    model = ref.modeling.BaiChuanForCausalLM(config)
    with torch.no_grad():  # random norms too, so that a swapped norm weight would show
        for name, param in model.named_parameters():
            param.normal_(1.0 if name.endswith("norm.weight") else 0.0, 0.2)
    (dst / "config.json").write_text(json.dumps({
        **config.to_dict(), "architectures": ["BaiChuanForCausalLM"], "auto_map": {
            "AutoConfig": "configuration_baichuan.BaiChuanConfig",
            "AutoModelForCausalLM": "modeling_baichuan.BaiChuanForCausalLM"}}))
    state = model.state_dict()  # includes the persistent rotary_emb.inv_freq buffers, as the hub file does
    if not sharded:
        torch.save(state, dst / "pytorch_model.bin")
        return dst
    names = list(state)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for file, keys in halves.items():
        save_file({k: state[k].contiguous() for k in keys}, dst / file)
    weight_map = {k: file for file, keys in halves.items() for k in keys}
    total = sum(t.numel() * t.element_size() for t in state.values())
    (dst / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}))
    return dst


def write_pubmedqa_test_ids(dst: Path, pqal: Path) -> Path:
    """test_ground_truth.json's format (PMID -> label) for every second item of the sample, in file order."""
    items = json.loads(pqal.read_text("utf-8"))
    test = {pmid: item["final_decision"] for i, (pmid, item) in enumerate(items.items()) if i % 2 == 0}
    dst.write_text(json.dumps(test), encoding="utf-8")
    return dst


def build_smoke_inputs(out: Path | None = None, shared: Path | None = None, force: bool = False) -> Path:
    """Write the paper-smoke inputs into `out` (default smoke_inputs_dir()); reused when complete."""
    out = Path(out or smoke_inputs_dir())
    shared = Path(shared or shared_dir())
    done = out / "COMPLETE"
    if done.exists() and not force:
        return out
    data = shared / "data"
    needed = [shared / "models" / "baichuan7b_reference", data / "chimed_format", data / "pubmedqa" / "pqal_trainval.json"]
    if missing := [str(p) for p in needed if not p.exists()]:
        raise FileNotFoundError(f"paper-smoke inputs need ../shared (set QILIN_SHARED to move it); missing: {missing}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".inputs-", suffix=".tmp", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; these are ordinary cache files
        write_random_baichuan(tmp / "baichuan-7b-random", needed[0], chimed_texts(needed[1]))
        write_pubmedqa_test_ids(tmp / "pubmedqa_test_ground_truth.json", needed[2])
        (tmp / "COMPLETE").write_text("written by qilin smoke-inputs\n", encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
