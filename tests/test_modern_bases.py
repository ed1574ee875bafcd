"""Modern chat bases (Qwen2.5, Qwen3, Llama-3) through SFT, DPO and the Scorer, offline: 2-layer random-weight
models built here, with small byte-level vocabularies that hold each family's special tokens and carry its
real chat template (the copies TRL ships in trl/chat_templates/).

`model.chat_template: auto` must give such a tokenizer TRL's training variant of its template, the answer's
end-of-turn token must be inside the loss mask, and the Scorer must stop on every id of the generation config
and on the template's end-of-turn token."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast
from trl.chat_template_utils import _CHAT_TEMPLATES_DIR, has_generation_markers

from qilin_lib.config import load_config
from qilin_lib.evaluation.scoring import Scorer
from qilin_lib.modeling import load_model_and_tokenizer
from qilin_lib.train.dpo import run_dpo, tokenize_preference
from qilin_lib.train.sft import IGNORE_INDEX, _generation_header, run_sft, tokenize_conversation

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|begin_of_text|>",
           "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
# As on the hub: Qwen2.5-7B (base) ends documents with <|endoftext|> and its generation config names only that
# id (an int), while its chat turns end in <|im_end|>; Qwen3 lists both; Llama-3-8B-Instruct lists
# <|end_of_text|> and <|eot_id|>.
FAMILIES = {
    "qwen2.5": {"template": "qwen2_5", "arch": "qwen2", "bos": None, "eos": "<|endoftext|>",
                "pad": "<|endoftext|>", "generation_eos": "<|endoftext|>", "end": "<|im_end|>", "kwargs": {}},
    "qwen3": {"template": "qwen3", "arch": "qwen3", "bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>",
              "generation_eos": ["<|im_end|>", "<|endoftext|>"], "end": "<|im_end|>",
              "kwargs": {"enable_thinking": False}},
    "llama3": {"template": "llama3", "arch": "llama", "bos": "<|begin_of_text|>", "eos": "<|end_of_text|>",
               "pad": None, "generation_eos": ["<|end_of_text|>", "<|eot_id|>"], "end": "<|eot_id|>", "kwargs": {}},
}
DISEASES = ["高血压", "糖尿病", "肺炎", "胃炎"]
SYMPTOMS = ["头痛", "口渴", "咳嗽", "腹痛"]
OVERRIDES = {f"{stage}.{key}": value for stage in ("sft", "dpo") for key, value in {
    "max_steps": 2, "per_device_batch_size": 4, "save_steps": 2, "logging_steps": 1, "warmup_ratio": 0.0,
    "lr_scheduler": "constant", "max_source_length": 64, "max_target_length": 32}.items()}


def conversations(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i = rng.randrange(len(DISEASES))
        turns = [{"role": "user", "content": f"{DISEASES[i]}有什么症状？"},
                 {"role": "assistant", "content": f"{DISEASES[i]}常见{SYMPTOMS[i]}。"}]
        if rng.random() < 0.5:
            turns += [{"role": "user", "content": "还有呢？"}, {"role": "assistant", "content": "请就医。"}]
        out.append({"messages": turns})
    return out


def pairs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i = rng.randrange(len(DISEASES))
        out.append({"prompt": f"{DISEASES[i]}有什么症状？", "chosen": f"{DISEASES[i]}常见{SYMPTOMS[i]}。",
                    "rejected": f"{DISEASES[i]}常见{SYMPTOMS[(i + 1) % 4]}。"})
    return out


def build_base(family: str, out: Path) -> Path:
    spec = FAMILIES[family]
    texts = [m["content"] for c in conversations(50) for m in c["messages"]] + [
        "system user assistant You are Qwen, created by Alibaba Cloud. You are a helpful assistant."]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=spec["bos"], eos_token=spec["eos"], pad_token=spec["pad"],
        chat_template=(_CHAT_TEMPLATES_DIR / f"{spec['template']}.jinja").read_text("utf-8"), model_max_length=256)
    config = AutoConfig.for_model(
        spec["arch"], vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
        tie_word_embeddings=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
    eos = spec["generation_eos"]
    model.generation_config.eos_token_id = (tokenizer.convert_tokens_to_ids(eos) if isinstance(eos, str)
                                            else [tokenizer.convert_tokens_to_ids(t) for t in eos])
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    return {family: build_base(family, tmp_path_factory.mktemp(family)) for family in FAMILIES}


def profile(family: str, **model):
    cfg = load_config("tiny", OVERRIDES)
    return dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, chat_template_kwargs=FAMILIES[family]["kwargs"], **model))


def loaded(bases, family: str):
    cfg = profile(family)
    model, tokenizer = load_model_and_tokenizer(cfg.model, str(bases[family]), device="cpu")
    return cfg, model, tokenizer


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("family", FAMILIES)
def test_auto_trains_every_answer_and_its_end_of_turn_token(bases, family):
    cfg, _, tok = loaded(bases, family)
    native = (_CHAT_TEMPLATES_DIR / f"{FAMILIES[family]['template']}.jinja").read_text("utf-8")
    assert tok.chat_template != native and has_generation_markers(tok.chat_template)  # TRL's training variant
    end = tok.convert_tokens_to_ids(FAMILIES[family]["end"])
    kw = cfg.model.chat_template_kwargs
    conv = conversations(8)[0]["messages"] + [{"role": "user", "content": "谢谢"},
                                              {"role": "assistant", "content": "不客气。"}]
    out = tokenize_conversation(tok, conv, 64, 32, template_kwargs=kw)
    labels = [t for t in out["labels"] if t != IGNORE_INDEX]
    assert labels.count(end) == sum(m["role"] == "assistant" for m in conv)
    assert tok.decode(labels, skip_special_tokens=True).count("不客气。") == 1
    # a cut answer keeps its end-of-turn token and what the template puts after it in the mask
    long = [{"role": "user", "content": "高血压有什么症状？"}, {"role": "assistant", "content": "高血压常见头痛。" * 8}]
    whole, cut = ([t for t in tokenize_conversation(tok, long, 64, limit, template_kwargs=kw)["labels"]
                   if t != IGNORE_INDEX] for limit in (64, 6))
    tail = whole[len(whole) - whole[::-1].index(end) - 1:]
    assert len(tail) == (2 if family.startswith("qwen") else 1)  # <|im_end|> "\n"; <|eot_id|>
    assert len(cut) == 6 and cut[-len(tail):] == tail and cut[:6 - len(tail)] == whole[:6 - len(tail)]
    row = tokenize_preference(tok, "肺炎有什么症状？", "肺炎常见咳嗽。", "不知道。", 64, 32, template_kwargs=kw)
    assert end in row["chosen_ids"][-2:] and end in row["rejected_ids"][-2:]


def test_qwen3_thinking_is_switched_off_everywhere(bases):
    cfg, model, tok = loaded(bases, "qwen3")
    off = cfg.model.chat_template_kwargs
    no_thinking = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert tok.decode(_generation_header(tok, **off)).endswith(no_thinking)
    assert tok.decode(_generation_header(tok)).endswith("<|im_start|>assistant\n")
    scorer = Scorer(model, tok, chat=True, progress=False, chat_template_kwargs=off)
    assert scorer.context("头痛？").endswith(no_thinking)


def _greedy(model, ids: list[int], n: int) -> list[int]:
    ids = torch.tensor([ids])
    with torch.no_grad():
        for _ in range(n):
            ids = torch.cat([ids, model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids[0, -n:].tolist()


@pytest.mark.parametrize("family", FAMILIES)
def test_scorer_stops_on_every_eos_id_and_the_end_of_turn_token(bases, family):
    cfg, model, tok = loaded(bases, family)
    scorer = Scorer(model, tok, chat=True, progress=False, chat_template_kwargs=cfg.model.chat_template_kwargs)
    eos = model.generation_config.eos_token_id
    assert {*([eos] if isinstance(eos, int) else eos), tok.convert_tokens_to_ids(FAMILIES[family]["end"])} <= set(
        scorer._stop_ids())  # Qwen2.5: <|im_end|> although its generation config names only <|endoftext|>
    prompt = scorer.context("高血压有什么症状？")
    greedy = _greedy(model, tok(prompt, add_special_tokens=False)["input_ids"], 6)
    for planted in (greedy[2], [tok.pad_token_id, greedy[2]]):  # an int and a list, as configs hold them
        model.generation_config.eos_token_id = planted
        stops = scorer._stop_ids()
        cut = next(k for k, t in enumerate(greedy) if t in stops)
        assert cut == greedy.index(greedy[2])  # the planted id cuts the answer
        want = tok.decode(greedy[:cut], skip_special_tokens=True).strip()
        assert scorer.generate([prompt], max_new_tokens=6) == [want]
    model.generation_config.eos_token_id = eos
    # loglik: next-token choice and continuation scores on the chat-wrapped prompt
    lp = scorer.next_token_logprobs([scorer.context("选哪个？", "答案：")], ["A", "B"])
    assert lp.shape == (1, 2) and torch.isfinite(lp).all()
    (score, n), = scorer.continuation_logprobs([(prompt, "高血压常见头痛。")])
    assert n == len(tok("高血压常见头痛。", add_special_tokens=False)["input_ids"]) and score < 0


@pytest.mark.parametrize("family", FAMILIES)
def test_sft_and_dpo_train_and_the_result_scores(bases, family, sandbox):
    cfg = profile(family)
    sft = run_sft(cfg, dataset=Dataset.from_list(conversations(16)), base_model=bases[family], progress=False)
    assert sft.metrics["label_tokens"] > 0 and sft.metrics["train_examples"] == 16
    dpo = run_dpo(cfg, dataset=Dataset.from_list(pairs(8)), sft_run=sft, progress=False,
                  heldout=Dataset.from_list(pairs(4, seed=1)))
    assert dpo.metrics["heldout"]["after"]["pairs"] == 4
    scorer = Scorer.load(cfg, dpo.path, chat=True, progress=False)
    assert has_generation_markers(scorer.tokenizer.chat_template)  # the trained model keeps the training variant
    assert len(scorer.generate([scorer.context("肺炎有什么症状？")], max_new_tokens=4)) == 1


def test_a_template_that_does_not_train_the_stop_token_is_refused(bases, sandbox, tmp_path):
    training = (_CHAT_TEMPLATES_DIR / "llama3_training.jinja").read_text("utf-8")
    inside = "{{- message['content'] | trim + '<|eot_id|>' }}\n        {%- endgeneration %}"
    assert inside in training
    leaky = tmp_path / "llama3_leaky.jinja"  # <|eot_id|> outside the mask: the model never learns to stop
    leaky.write_text(training.replace(
        inside, "{{- message['content'] | trim }}{%- endgeneration %}{{- '<|eot_id|>' }}"))
    cfg = profile("llama3", chat_template=str(leaky))
    with pytest.raises(ValueError, match=r"llama3_leaky.jinja' does not train the stop token: generation stops on "
                                         r"<\|end_of_text\|>, <\|eot_id\|>"):
        run_sft(cfg, dataset=Dataset.from_list(conversations(4)), base_model=bases["llama3"], progress=False)


def test_a_template_without_markers_that_trl_does_not_know_is_refused(bases, sandbox, tmp_path):
    base = tmp_path / "unknown_family"
    build_base("qwen2.5", base)
    own = base / "chat_template.jinja"
    own.write_text(own.read_text("utf-8") + "{#- a family TRL has no training variant of #}")
    cfg = profile("qwen2.5")
    _, tok = load_model_and_tokenizer(cfg.model, str(base), device="cpu")
    assert not has_generation_markers(tok.chat_template)  # kept: evaluation can still use it
    with pytest.raises(ValueError, match=r"model.chat_template 'auto' \(the tokenizer's own template\): the chat "
                                         r"template marks no assistant tokens"):
        run_sft(cfg, dataset=Dataset.from_list(conversations(4)), base_model=base, progress=False)
