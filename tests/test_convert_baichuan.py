"""Baichuan-7B -> native Llama conversion (qilin_lib.convert), checked against the authors' own code.

A tiny random Baichuan is built with ../shared/models/baichuan7b_reference/ (imported in place, never copied)
and a SentencePiece model is trained here with Baichuan's documented settings, once with and once without
the dummy prefix. The converted directory must give the same logits and greedy generations as the
reference model, and the same token ids as SentencePiece on every text of the real samples in
../shared/data.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, LlamaForCausalLM, TokenizersBackend

from qilin_lib.cli import main
from qilin_lib.convert import convert_baichuan, convert_tokenizer, llama_config
from qilin_lib.smoke import VOCAB, chimed_texts, reference_modules, write_random_baichuan

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "models" / "baichuan7b_reference"
# Edge cases the real samples lack: runs of spaces, leading/trailing whitespace, text starting with the
# SentencePiece space mark, digits, characters outside the trained vocabulary (byte fallback)
EDGE_TEXTS = ["  两个前导空格", "中间  两个空格", "结尾空格  ", "\n\n换行\n", "制表\t符", "体温38.5度，血压120/80",
              "▁已有空格符", "罕见字𠀀和表情🙂", "ASCII only: Fever 39C?",
              " <reserved_102> 头痛怎么办？ <reserved_103> "]


# --------------------------------------------------------------------------------------- reference
@pytest.fixture(scope="module")
def ref():
    """The reference files as a package (modeling_baichuan.py imports `.configuration_baichuan`)."""
    if not REFERENCE.is_dir():
        pytest.skip(f"{REFERENCE} (Baichuan-7B reference code) is absent on this machine")
    return reference_modules(REFERENCE)


def _load_reference_model(ref, path):
    model = ref.modeling.BaiChuanForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    # Repair for transformers 5: loading materialises the non-persistent buffers cos_cached/sin_cached with
    # empty_like, i.e. garbage (NaN logits, no error). Recompute them as RotaryEmbedding.__init__ does,
    # from the inv_freq the checkpoint holds.
    for module in model.modules():
        if isinstance(module, ref.modeling.RotaryEmbedding):
            t = torch.arange(module.max_seq_len_cached, dtype=module.inv_freq.dtype)
            emb = torch.cat([torch.outer(t, module.inv_freq)] * 2, dim=-1)
            module.cos_cached, module.sin_cached = emb.cos()[None, None], emb.sin()[None, None]
    return model


def _reference_tokenizer(ref, path):
    # Repair for transformers >= 4.34: PreTrainedTokenizer.__init__ calls get_vocab(), which needs sp_model,
    # but the hub code creates sp_model only after super().__init__ (SOURCE.md; transformers #27171).
    class Repaired(ref.tokenization.BaiChuanTokenizer):
        def __init__(self, vocab_file, **kwargs):
            self.sp_model = spm.SentencePieceProcessor(model_file=vocab_file)
            super().__init__(vocab_file, **kwargs)

    settings = json.loads((path / "tokenizer_config.json").read_text("utf-8"))
    return Repaired(str(path / "tokenizer.model"),
                    **{key: settings[key] for key in ("add_bos_token", "add_eos_token") if key in settings})


# ------------------------------------------------------------------------------------- real texts
def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _read_texts(path: Path) -> list[str]:
    """Every string of a sample file: JSON / JSON-lines values, CSV / TSV cells, text lines."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # cmexam test_10_official.csv has a BOM
    except UnicodeDecodeError:
        text = raw.decode("gbk")  # toyhom_dialogue (README: GBK)
    if path.suffix in {".json", ".jsonl"}:
        try:
            return list(_strings(json.loads(text)))
        except json.JSONDecodeError:  # ".json" files that are JSON lines (README pitfall 4)
            return list(_strings([json.loads(line) for line in text.splitlines() if line.strip()]))
    if path.suffix in {".csv", ".tsv"}:
        csv.field_size_limit(sys.maxsize)
        rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix == ".tsv" else ",")
        return [cell for row in rows for cell in row]
    return text.splitlines()


@pytest.fixture(scope="module")
def real_texts(shared_data) -> dict[str, list[str]]:
    """Non-empty strings per sample file. Not read: SOURCE.md / README.md (documentation, not samples) and
    cmexam/val.xlsx (not text; val_from_xlsx.csv holds the same questions)."""
    files = sorted(p for p in shared_data.rglob("*") if p.suffix in {".json", ".jsonl", ".csv", ".tsv", ".txt"})
    return {str(p.relative_to(shared_data)): [s for s in _read_texts(p) if s] for p in files}


# ------------------------------------------------------------------------------ tiny checkpoints
def write_checkpoint(ref, src: Path, shared_data: Path, *, dummy_prefix: bool = True, sharded: bool = False) -> Path:
    """A small random-weight remote-code checkpoint in `src` as on the hub, written by the same function as
    the paper-smoke inputs (qilin_lib.smoke): config.json, weights (one pytorch_model.bin, or two
    safetensors shards with an index), tokenizer.model trained on the ChiMed samples, tokenizer_config.json.
    Also used by tests/test_base_model.py. `ref` (the imported reference package) only orders the fixtures."""
    return write_random_baichuan(src, REFERENCE, chimed_texts(shared_data / "chimed_format"),
                                 dummy_prefix=dummy_prefix, sharded=sharded)


@pytest.fixture(scope="module", params=[True, False], ids=["dummy_prefix", "no_dummy_prefix"])
def checkpoint(request, ref, shared_data, tmp_path_factory) -> Path:
    """The dummy-prefix variant stores one pytorch_model.bin, the other sharded safetensors with an index,
    so that both readers of the converter run."""
    dummy_prefix = request.param
    src = tmp_path_factory.mktemp("baichuan_dummy_prefix" if dummy_prefix else "baichuan_no_dummy_prefix")
    return write_checkpoint(ref, src, shared_data, dummy_prefix=dummy_prefix, sharded=not dummy_prefix)


@pytest.fixture(scope="module")
def converted(checkpoint, tmp_path_factory) -> Path:
    return convert_baichuan(checkpoint, tmp_path_factory.mktemp("llama") / "converted")


# ----------------------------------------------------------------------------------------- tests
def test_converted_model_gives_the_reference_logits_and_greedy_generations(ref, checkpoint, converted,
                                                                          real_texts):
    reference = _load_reference_model(ref, checkpoint)
    llama = LlamaForCausalLM.from_pretrained(converted, attn_implementation="eager").eval()
    assert llama.dtype == torch.float32 and llama.config.tie_word_embeddings is False
    tokenizer = _reference_tokenizer(ref, checkpoint)
    prompts = [real_texts["chimed_format/cpt.txt"][1][:60], real_texts["cmexam/test_sample300.json"][0][:80],
               " <reserved_102> 头痛怎么办？ <reserved_103> "]
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([tokenizer(prompt)["input_ids"]])
            want, got = reference(ids).logits, llama(ids).logits
            assert torch.isfinite(want).all()
            diff = (want - got).abs().max().item()
            assert diff <= 1e-5, prompt

            # reference: argmax over the full sequence each step (its tuple KV cache and missing
            # GenerationMixin rule out generate() under transformers 5); Llama: generate() with its KV cache
            seq = ids
            for _ in range(20):
                token = reference(seq).logits[:, -1].argmax(-1, keepdim=True)
                seq = torch.cat([seq, token], dim=-1)
                if token.item() == llama.generation_config.eos_token_id:
                    break
            out = llama.generate(ids, max_new_tokens=20, do_sample=False)
            assert out.tolist() == seq.tolist()
            print(f"max |logit diff| {diff:.3g} over {ids.shape[1]} tokens; "
                  f"{seq.shape[1] - ids.shape[1]} greedy tokens identical")


def test_fast_tokenizer_gives_sentencepiece_ids_on_every_real_text(checkpoint, converted, real_texts, ref):
    sp = spm.SentencePieceProcessor(model_file=str(checkpoint / "tokenizer.model"))
    fast = AutoTokenizer.from_pretrained(converted)
    # The generic backend: LlamaTokenizer would rebuild the pipeline with its own dummy prefix (measured:
    # ids differ on nearly every text of the no-dummy-prefix model) and, from tokenizer.model alone, with a
    # 3-token vocabulary
    assert type(fast) is TokenizersBackend and len(fast) == sp.get_piece_size() == VOCAB

    texts = sorted({t for file_texts in real_texts.values() for t in file_texts} | set(EDGE_TEXTS))
    # special tokens on: Baichuan-7B's tokenizer_config.json adds neither BOS nor EOS, so none may appear
    want, got = sp.encode(texts), fast(texts)["input_ids"]
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    print(f"{checkpoint.name}: {len(texts)} distinct texts ({sum(map(len, real_texts.values()))} strings "
          f"in {len(real_texts)} files), {len(bad)} mismatches")
    assert not bad, "\n".join(f"{t[:60]!r}: sp {w[:10]} fast {g[:10]}" for t, w, g in bad[:20])

    # the (repaired) hub tokenizer agrees too, special tokens included; decoding gives the text back
    reference = _reference_tokenizer(ref, checkpoint)
    for text in EDGE_TEXTS[:-1] + ["病史</s>无"]:
        assert fast(text)["input_ids"] == reference(text)["input_ids"], text
    for text in EDGE_TEXTS + real_texts["chimed_format/cpt.txt"][:50]:
        assert fast.decode(sp.encode(text)) == sp.decode(sp.encode(text)), text


def test_bos_and_eos_follow_tokenizer_config(ref, checkpoint, tmp_path):
    """As BaiChuanTokenizer reads them, with its defaults (BOS yes, EOS no) where the file is silent. After
    reloading, transformers 5 takes them from tokenizer.json's post-processor, not from attributes."""
    for i, settings in enumerate([{}, {"add_bos_token": False, "add_eos_token": True}]):
        src = tmp_path / f"src{i}"
        src.mkdir()
        (src / "tokenizer.model").write_bytes((checkpoint / "tokenizer.model").read_bytes())
        (src / "tokenizer_config.json").write_text(json.dumps(settings))
        convert_tokenizer(src).save_pretrained(tmp_path / f"out{i}")
        fast = TokenizersBackend.from_pretrained(tmp_path / f"out{i}")
        reference = _reference_tokenizer(ref, src)
        assert fast("头痛", "发热")["input_ids"] == reference("头痛", "发热")["input_ids"]
        ids = fast("头痛")["input_ids"]
        assert ids == reference("头痛")["input_ids"]
        assert (ids[0] == fast.bos_token_id, ids[-1] == fast.eos_token_id) == (
            settings.get("add_bos_token", True), settings.get("add_eos_token", False))


def test_cli_converts_a_checkpoint(checkpoint, converted, tmp_path):
    dst = tmp_path / "cli"
    assert main(["convert", "baichuan", str(checkpoint), str(dst)]) == 0
    files = {p.name: p.read_bytes() for p in dst.iterdir()}
    assert files == {p.name: p.read_bytes() for p in converted.iterdir()}
    assert json.loads(files["config.json"])["model_type"] == "llama"
    with pytest.raises(FileExistsError):
        main(["convert", "baichuan", str(checkpoint), str(dst)])


def test_converter_streams_into_shards_and_rejects_unknown_weights(checkpoint, tmp_path):
    dst = convert_baichuan(checkpoint, tmp_path / "sharded", max_shard_bytes=200_000)
    index = json.loads((dst / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    assert LlamaForCausalLM.from_pretrained(dst).model.layers[1].self_attn.q_proj.weight.shape == (64, 64)

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("config.json", "tokenizer.model", "tokenizer_config.json"):
        (bad / name).write_bytes((checkpoint / name).read_bytes())
    torch.save({"model.layers.0.self_attn.unknown.weight": torch.zeros(2)}, bad / "pytorch_model.bin")
    with pytest.raises(ValueError, match="unexpected weight"):
        convert_baichuan(bad, tmp_path / "out")


def test_lora_parameters_at_the_7b_shape(ref):
    """LoRA r=8 on the authors' fused W_pack vs the converted q/k/v, counted by peft on meta tensors."""
    baichuan_7b = ref.configuration.BaiChuanConfig()  # its defaults are the 7B config
    with torch.device("meta"):
        fused = ref.modeling.BaiChuanForCausalLM(baichuan_7b)
        split = LlamaForCausalLM(llama_config(baichuan_7b.to_dict()))

    def lora(model, targets):
        wrapped = get_peft_model(model, LoraConfig(r=8, target_modules=targets))
        count = wrapped.get_nb_trainable_parameters()[0]
        wrapped.unload()  # peft injects its layers in place: back to the bare model for the next count
        return count

    counts = {"W_pack": lora(fused, ["W_pack"]), "q,k,v": lora(split, ["q_proj", "k_proj", "v_proj"]),
              "all-linear fused": lora(fused, "all-linear"), "all-linear split": lora(split, "all-linear")}
    print(counts)
    # per layer r * (in + out): W_pack 8 * (4096 + 12288); q, k, v 3 * 8 * (4096 + 4096);
    # all-linear adds o_proj 8 * 8192 and the MLP 3 * 8 * (4096 + 11008); times 32 layers
    assert counts == {"W_pack": 4_194_304, "q,k,v": 6_291_456,
                      "all-linear fused": 17_891_328, "all-linear split": 19_988_480}
