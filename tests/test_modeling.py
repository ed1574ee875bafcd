"""qilin_lib.modeling: the tiny tokenizer and model, loading, chat template masks, LoRA merge, caching."""

import json
import logging
import random
import re

import pytest
import torch

from qilin_lib.cache import StageArtifact
from qilin_lib.config import LoraConfig, ModelConfig, load_config
from qilin_lib.modeling import (CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_model, build_tiny_tokenizer,
                                count_parameters, load_model_and_tokenizer, lora_config, merge_adapter,
                                tiny_base_model)

CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
SMALL = ModelConfig(vocab_size=500, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128,
                    max_position_embeddings=128)


def make_texts(n=300, seed=0):
    rng = random.Random(seed)
    diseases = ["高血压", "糖尿病", "肺炎", "胃炎", "哮喘", "偏头痛"]
    symptoms = ["头痛", "头晕", "咳嗽", "发热", "腹痛", "气短"]
    english = ["hypertension", "diabetes", "pneumonia", "gastritis", "asthma", "migraine"]
    texts = []
    for _ in range(n):
        i, j = rng.randrange(6), rng.randrange(6)
        texts.append(rng.choice([
            f"{diseases[i]}的常见症状是{symptoms[j]}，应去内科就诊。",
            f"{english[i].capitalize()} often causes {symptoms[j]} (症状) in adults.",
            f"问：{diseases[i]}需要做什么检查？答：血常规和CT。",
        ]))
    return texts


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer(make_texts(), vocab_size=500, model_max_length=128)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("tiny")
    tokenizer.save_pretrained(path)
    build_tiny_model(SMALL, tokenizer, seed=0).save_pretrained(path)
    return path


# ------------------------------------------------------------------------------------- tokenizer
def test_cjk_characters_are_never_merged(tokenizer):
    assert 300 < len(tokenizer) <= 500
    for token in tokenizer.get_vocab():
        text = tokenizer.convert_tokens_to_string([token])
        assert len(CJK.findall(text)) <= 1, token
    # merges do happen: inside Latin words, and a frequent character is one token, not three bytes
    assert len(tokenizer.tokenize("hypertension")) < len("hypertension")
    assert len(tokenizer.tokenize("高血压")) == 3


def test_special_token_ids(tokenizer):
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(len(SPECIAL_TOKENS)))
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")


def test_training_is_deterministic(tokenizer):
    again = build_tiny_tokenizer(make_texts(), vocab_size=500, model_max_length=128)
    assert again.get_vocab() == tokenizer.get_vocab()


@pytest.mark.parametrize("text", ["高血压患者应低盐饮食。", "Take 2 tablets, twice a day!",
                                  "CT检查 shows  肺炎\n（轻度）：ok 𠀀 ü é", "  leading and trailing  "])
def test_decode_round_trips(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_chat_template_assistant_mask(tokenizer):
    conv = [{"role": "system", "content": "你是医生。"},
            {"role": "user", "content": "头痛怎么办？"},
            {"role": "assistant", "content": "多休息，测血压。"},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": "Take care 再见"}]
    out = tokenizer.apply_chat_template(conv, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask)
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    # expected mask, built piece by piece: assistant content + its <|end|> only
    expected_ids, expected_mask = [tokenizer.bos_token_id], [0]
    for m in conv:
        head = tokenizer(f"<|{m['role']}|>\n", add_special_tokens=False)["input_ids"]
        body = tokenizer(m["content"], add_special_tokens=False)["input_ids"] + [end]
        tail = tokenizer("\n", add_special_tokens=False)["input_ids"]
        flag = int(m["role"] == "assistant")
        expected_ids += head + body + tail
        expected_mask += [0] * len(head) + [flag] * len(body) + [0] * len(tail)
    assert ids == expected_ids
    assert mask == expected_mask
    masked = [i for i, k in zip(ids, mask) if k]
    assert tokenizer.decode(masked) == "多休息，测血压。<|end|>Take care 再见<|end|>"


def test_generation_prompt(tokenizer):
    conv = [{"role": "user", "content": "发热吃什么药？"}]
    text = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    assert text == "<s><|user|>\n发热吃什么药？<|end|>\n<|assistant|>\n"
    assert tokenizer.apply_chat_template(conv, tokenize=False) == "<s><|user|>\n发热吃什么药？<|end|>\n"
    assert tokenizer.chat_template == CHAT_TEMPLATE


# ----------------------------------------------------------------------------------------- model
def test_deterministic_init(tokenizer):
    a, b = build_tiny_model(SMALL, tokenizer, seed=3), build_tiny_model(SMALL, tokenizer, seed=3)
    c = build_tiny_model(SMALL, tokenizer, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.config.vocab_size == len(tokenizer) and a.config.tie_word_embeddings
    assert a.lm_head.weight.data_ptr() == a.model.embed_tokens.weight.data_ptr()


def test_default_tiny_size_is_a_few_million():
    class VocabOnly:  # the default 3000-token vocab without training a tokenizer that large
        bos_token_id, eos_token_id, pad_token_id = 0, 1, 2
        def __len__(self): return 3000
        def convert_tokens_to_ids(self, token): return 7

    model = build_tiny_model(load_config("tiny").model, VocabOnly(), seed=0)
    trainable, total = count_parameters(model)
    assert trainable == total and 1_000_000 < total < 10_000_000


def test_load_from_local_dir(tiny_dir, tokenizer, caplog):
    cfg = dataclasses_replace(SMALL, dtype="bfloat16", attn_implementation="flash_attention_2")
    with caplog.at_level(logging.WARNING, logger="qilin_lib.modeling"):
        model, tok = load_model_and_tokenizer(cfg, str(tiny_dir), device="cpu", padding_side="left")
    assert "float32" in caplog.text and "sdpa" in caplog.text  # both fallbacks are logged
    assert next(model.parameters()).dtype == torch.float32
    assert model.config._attn_implementation == "sdpa"
    assert tok.padding_side == "left" and tok.pad_token == "<pad>"
    assert tok.get_vocab() == tokenizer.get_vocab() and tok.chat_template == CHAT_TEMPLATE
    reference = build_tiny_model(SMALL, tokenizer, seed=0)
    ids = torch.tensor([tokenizer("高血压 causes headache")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, reference(ids).logits)


def test_missing_pad_token_becomes_eos(tiny_dir, tmp_path):
    cfg_path = tiny_dir / "tokenizer_config.json"
    data = json.loads(cfg_path.read_text("utf-8"))
    data.pop("pad_token")
    for name in ("tokenizer.json", "generation_config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((tiny_dir / name).read_bytes())
    config = json.loads((tiny_dir / "config.json").read_text("utf-8"))
    config.pop("pad_token_id", None)
    (tmp_path / "config.json").write_text(json.dumps(config), "utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(data), "utf-8")
    model, tok = load_model_and_tokenizer(SMALL, str(tmp_path), device="cpu")
    assert tok.pad_token == tok.eos_token == "</s>"
    assert model.config.pad_token_id == tok.eos_token_id


def test_remote_code_error_names_the_profile_key(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "baichuan_like", "architectures": ["BaiChuanForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_baichuan.BaiChuanConfig",
                     "AutoModelForCausalLM": "modeling_baichuan.BaiChuanForCausalLM"}}), "utf-8")
    with pytest.raises(ValueError, match=r"model\.trust_remote_code: true.*Baichuan-7B"):
        load_model_and_tokenizer(ModelConfig(), str(tmp_path), device="cpu")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({  # and a remote-code tokenizer too
        "tokenizer_class": "BaiChuanTokenizer",
        "auto_map": {"AutoTokenizer": ["tokenization_baichuan.BaiChuanTokenizer", None]}}), "utf-8")
    with pytest.raises(ValueError, match=r"model\.trust_remote_code: true.*Baichuan-7B"):
        load_model_and_tokenizer(ModelConfig(), str(tmp_path), device="cpu")


def test_tiny_name_is_not_loadable_directly():
    with pytest.raises(ValueError, match="tiny_base_model"):
        load_model_and_tokenizer(ModelConfig(), device="cpu")


# ------------------------------------------------------------------------------------------ LoRA
def test_lora_merge_keeps_logits(tiny_dir, tokenizer, tmp_path):
    from peft import PeftModel, get_peft_model

    peft_cfg = lora_config(LoraConfig(enabled=True, r=4, alpha=16, dropout=0.05))
    assert peft_cfg.target_modules == "all-linear" or "all-linear" in str(peft_cfg.target_modules)
    base, _ = load_model_and_tokenizer(SMALL, str(tiny_dir), device="cpu")
    ids = torch.tensor([tokenizer("肺炎的症状是咳嗽和 fever。")["input_ids"]])
    with torch.no_grad():
        base_logits = base(ids).logits.clone()
    model = get_peft_model(base, peft_cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    trainable, total = count_parameters(model)
    assert 0 < trainable < total
    model.eval()
    with torch.no_grad():
        wrapped = model(ids).logits
        assert not torch.allclose(wrapped, base_logits, atol=1e-3)  # the adapter does something
        model.save_pretrained(tmp_path / "adapter")
        fresh, _ = load_model_and_tokenizer(SMALL, str(tiny_dir), device="cpu")
        reloaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()(ids).logits
        merged = model.merge_and_unload()(ids).logits
        out = merge_adapter(tiny_dir, tmp_path / "adapter", tmp_path / "merged", model_cfg=SMALL, device="cpu")
        from_disk, tok = load_model_and_tokenizer(SMALL, str(out), device="cpu")
        disk = from_disk(ids).logits
    for other in (reloaded, merged, disk):
        torch.testing.assert_close(other, wrapped, atol=1e-5, rtol=0)
    assert tok.get_vocab() == tokenizer.get_vocab()
    assert not any("lora" in k for k in from_disk.state_dict())


def test_lora_config_list_of_modules():
    cfg = lora_config(LoraConfig(r=8, alpha=32, dropout=0.05, target_modules="q_proj, v_proj"))
    assert set(cfg.target_modules) == {"q_proj", "v_proj"}
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.task_type) == (8, 32, 0.05, "CAUSAL_LM")


# ------------------------------------------------------------------------------------ cache reuse
def test_tiny_base_model_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("QILIN_ARTIFACTS", str(tmp_path))
    cfg = load_config("tiny", {"model.vocab_size": 400, "model.hidden_size": 64, "model.num_layers": 2,
                               "model.intermediate_size": 128, "model.max_position_embeddings": 128})
    calls = []

    def texts():
        calls.append(1)
        return make_texts(200)

    path = tiny_base_model(cfg, texts, input_hash="abc")
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    assert calls == [1] and manifest["complete"] and manifest["inputs"] == {"corpus": "abc"}
    assert path == StageArtifact(cfg.name, "base_model", config=manifest["config"], inputs={"corpus": "abc"}).path
    again = tiny_base_model(cfg, texts, input_hash="abc")
    assert again == path and calls == [1]  # the corpus was not even generated
    assert json.loads((path / "manifest.json").read_text("utf-8"))["created_unix"] == manifest["created_unix"]
    model, tok = load_model_and_tokenizer(cfg.model, str(path), device="cpu")
    assert model.config.vocab_size == len(tok) <= 400
    assert tiny_base_model(cfg, texts, input_hash="other") != path and calls == [1, 1]


def dataclasses_replace(obj, **changes):
    import dataclasses
    return dataclasses.replace(obj, **changes)


def test_hub_remote_code_runs_only_at_a_pinned_revision(tmp_path):
    from qilin_lib.modeling import hub_kwargs

    remote = ModelConfig(name_or_path="org/model", trust_remote_code=True)
    with pytest.raises(ValueError, match="pin model.revision"):
        hub_kwargs(remote, "org/model")
    with pytest.raises(ValueError, match="pin model.revision"):
        hub_kwargs(dataclasses_replace(remote, revision="main"), "org/model")
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert hub_kwargs(dataclasses_replace(remote, revision=sha), "org/model") == {"trust_remote_code": True,
                                                                                 "revision": sha}
    assert hub_kwargs(remote, str(tmp_path)) == {"trust_remote_code": True}      # a local checkpoint
    assert hub_kwargs(ModelConfig(), "org/model") == {"trust_remote_code": False, "revision": None}
