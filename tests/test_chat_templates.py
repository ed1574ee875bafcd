"""The authors' prompt format (`baichuan-chat`) on a Baichuan-style tokenizer, and `model.chat_template`.

The tokenizer: a SentencePiece BPE trained here with Baichuan-7B's documented settings and the prompt
markers as user-defined pieces (as tests/test_convert_baichuan.py builds it), converted with
qilin_lib.convert, once with and once without the dummy prefix (the real model's setting is unknown). The
SFT labels must equal, token by token, what the authors' supervised_finetuning.py computes with their own
tokenizer (../shared/models/baichuan7b_reference/tokenization_baichuan.py).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from transformers import AutoTokenizer

from qilin_lib.chat_templates import BAICHUAN_CHAT, use_chat_template
from qilin_lib.config import ConfigError, ModelConfig, load_config
from qilin_lib.convert import convert_tokenizer
from qilin_lib.evaluation.scoring import Scorer
from qilin_lib.modeling import CHAT_TEMPLATE, build_tiny_model, build_tiny_tokenizer, load_model_and_tokenizer
from qilin_lib.train.dpo import tokenize_preference
from qilin_lib.train.sft import IGNORE_INDEX, _generation_header, tokenize_conversation

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "models" / "baichuan7b_reference"
MARKERS = ["<reserved_102>", "<reserved_103>"]
USER_DEFINED = 4  # sentencepiece_model.proto: ModelProto.SentencePiece.Type.USER_DEFINED
TEXTS = ["高血压有什么症状？", "高血压常见头痛、头晕。", "吃什么药？", "可以用氨氯地平，每天一次。", "好的，谢谢医生。",
         "糖尿病患者口渴多饮。", "Fever 39C, take ibuprofen 2 times a day.", "肺炎常见咳嗽和发热。"] * 30
CONV = [{"role": "user", "content": "高血压有什么症状？"}, {"role": "assistant", "content": "高血压常见头痛、头晕。"},
        {"role": "user", "content": "吃什么药？"}, {"role": "assistant", "content": "可以用氨氯地平，每天一次。"}]


@pytest.fixture(scope="module", params=[True, False], ids=["dummy_prefix", "no_dummy_prefix"])
def baichuan_dir(request, tmp_path_factory) -> Path:
    """tokenizer.model + Baichuan-7B's tokenizer_config.json (no BOS, no EOS added)."""
    src = tmp_path_factory.mktemp("baichuan_tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXTS), model_prefix=str(src / "tokenizer"), model_type="bpe", vocab_size=400,
        hard_vocab_limit=False, normalization_rule_name="identity", split_digits=True, byte_fallback=True,
        add_dummy_prefix=request.param, remove_extra_whitespaces=False, user_defined_symbols=MARKERS,
        num_threads=1, minloglevel=2)
    (src / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": False, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "pad_token": None}))
    return src


@pytest.fixture(scope="module")
def tokenizer(baichuan_dir, tmp_path_factory):
    """The converted fast tokenizer as a stage loads it, with the authors' template."""
    out = tmp_path_factory.mktemp("converted")
    convert_tokenizer(baichuan_dir).save_pretrained(out)
    return use_chat_template(AutoTokenizer.from_pretrained(out), "baichuan-chat")


@pytest.fixture(scope="module")
def authors_tokenizer(baichuan_dir):
    """BaiChuanTokenizer, the hub code the authors ran, repaired for transformers >= 4.34 (sp_model must
    exist before PreTrainedTokenizer.__init__; see tests/test_convert_baichuan.py)."""
    if not REFERENCE.is_dir():
        pytest.skip(f"{REFERENCE} (Baichuan-7B reference code) is absent on this machine")
    spec = importlib.util.spec_from_file_location("tokenization_baichuan", REFERENCE / "tokenization_baichuan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Repaired(module.BaiChuanTokenizer):
        def __init__(self, vocab_file, **kwargs):
            self.sp_model = spm.SentencePieceProcessor(model_file=vocab_file)
            super().__init__(vocab_file, **kwargs)

    return Repaired(str(baichuan_dir / "tokenizer.model"), add_bos_token=False, add_eos_token=False)


def authors_preprocess(tokenizer, pairs, max_source_length: int, max_target_length: int):
    """supervised_finetuning.py's preprocess_function with template baichuan-chat (system prompt ""),
    transcribed line by line: each source and target encoded on its own, a later turn's source starting
    with the separator </s> whose EOS is stripped, EOS appended to every target."""
    prompt, sep = " <reserved_102> {query} <reserved_103> ", "</s>"
    dialog = []
    for turn, (query, answer) in enumerate(pairs):
        dialog += [(sep if turn else "") + prompt.format(query=query), answer]
    max_length = max_source_length + max_target_length
    input_ids, labels = [], []
    for i in range(len(dialog) // 2):
        source_ids = tokenizer.encode(text=dialog[2 * i], add_special_tokens=(i == 0))
        target_ids = tokenizer.encode(text=dialog[2 * i + 1], add_special_tokens=False)
        if len(source_ids) > max_source_length:
            source_ids = source_ids[:max_source_length]
        if len(target_ids) > max_target_length - 1:  # eos token
            target_ids = target_ids[:max_target_length - 1]
        if len(source_ids) > 0 and source_ids[0] == tokenizer.eos_token_id:
            source_ids = source_ids[1:]
        if len(target_ids) > 0 and target_ids[-1] == tokenizer.eos_token_id:
            target_ids = target_ids[:-1]
        if len(input_ids) + len(source_ids) + len(target_ids) + 1 > max_length:
            break
        input_ids += source_ids + target_ids + [tokenizer.eos_token_id]
        labels += [IGNORE_INDEX] * len(source_ids) + target_ids + [tokenizer.eos_token_id]
    return input_ids, labels


def proto_of(baichuan_dir: Path):
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((baichuan_dir / "tokenizer.model").read_bytes())
    return proto


def pairs_of(conv):
    return [(conv[k]["content"], conv[k + 1]["content"]) for k in range(0, len(conv), 2)]


# ------------------------------------------------------------------------------------------ tests
def test_role_markers_are_single_reserved_pieces(baichuan_dir, tokenizer):
    pieces = {p.piece: (i, p.type) for i, p in enumerate(proto_of(baichuan_dir).pieces)}
    prompt = tokenizer.apply_chat_template(CONV[:1], tokenize=True, add_generation_prompt=True,
                                           return_dict=True)["input_ids"]
    for marker in MARKERS:
        piece_id, kind = pieces[marker]
        assert kind == USER_DEFINED and tokenizer.convert_tokens_to_ids(marker) == piece_id
        assert prompt.count(piece_id) == 1
    assert tokenizer.decode(prompt).strip() == "<reserved_102> 高血压有什么症状？ <reserved_103>"


def test_sft_labels_follow_the_authors_rule_token_by_token(baichuan_dir, tokenizer, authors_tokenizer):
    want_ids, want_labels = authors_preprocess(authors_tokenizer, pairs_of(CONV), 256, 256)
    out = tokenize_conversation(tokenizer, CONV, 256, 256, by_segment=True)
    assert out["input_ids"] == want_ids and out["labels"] == want_labels
    eos = tokenizer.eos_token_id
    assert [t for t in out["labels"] if t != IGNORE_INDEX].count(eos) == 2 and out["input_ids"][-1] == eos
    assert tokenizer.decode([t for t in out["labels"] if t != IGNORE_INDEX], skip_special_tokens=True).replace(
        " ", "") == "高血压常见头痛、头晕。可以用氨氯地平，每天一次。"
    if proto_of(baichuan_dir).normalizer_spec.add_dummy_prefix:
        # tokenized as one string, the space after <reserved_103> merges into the answer's first piece
        # ("▁高血压"), unlike the authors' training and the prompts at inference, which end in a lone "▁"
        assert tokenize_conversation(tokenizer, CONV, 256, 256)["input_ids"] != want_ids


def test_truncation_lengths_follow_the_authors_rule(tokenizer, authors_tokenizer):
    conv = [{"role": "user", "content": "高血压有什么症状？" * 6}, {"role": "assistant", "content": "常见头痛、头晕。" * 6},
            *CONV[2:]]
    source_len, target_len = 16, 10
    want_ids, want_labels = authors_preprocess(authors_tokenizer, pairs_of(conv), source_len, target_len)
    out = tokenize_conversation(tokenizer, conv, source_len, target_len, by_segment=True)
    # target cut to max_target_length - 1 answer tokens + EOS; the second turn would pass 16 + 10 tokens:
    # dropped, as the authors drop it
    assert out["labels"] == want_labels and len(out["input_ids"]) == len(want_ids) == source_len + target_len
    # source cut to max_source_length: the authors keep its first 16 tokens; here the last ones are the
    # answer header " <reserved_103> " so that the answer opens as it does at inference
    header = _generation_header(tokenizer)
    assert tokenizer.convert_ids_to_tokens(header) == ["▁", "<reserved_103>", "▁"]
    keep = source_len - len(header)
    assert out["input_ids"][:keep] == want_ids[:keep] and out["input_ids"][keep:source_len] == header
    assert out["input_ids"][source_len:] == want_ids[source_len:]


def test_dpo_pairs_are_split_like_sft_turns(tokenizer, authors_tokenizer):
    row = tokenize_preference(tokenizer, CONV[0]["content"], CONV[1]["content"], "不知道。", 256, 256,
                              by_segment=True)
    want_ids, _ = authors_preprocess(authors_tokenizer, pairs_of(CONV[:2]), 256, 256)
    assert row["prompt_ids"] + row["chosen_ids"] == want_ids
    assert row["rejected_ids"] == authors_tokenizer.encode("不知道。", add_special_tokens=False) + [
        tokenizer.eos_token_id]


def test_template_is_applied_on_load_and_by_the_scorer(baichuan_dir, tmp_path):
    model_dir = tmp_path / "model"
    tokenizer = convert_tokenizer(baichuan_dir)  # as converted: no chat template of its own
    tokenizer.save_pretrained(model_dir)
    cfg = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_position_embeddings=64)
    build_tiny_model(cfg, tokenizer, seed=0).save_pretrained(model_dir)

    _, auto = load_model_and_tokenizer(cfg, str(model_dir), device="cpu")
    assert auto.chat_template is None  # `auto` leaves the tokenizer's own (none here)
    chat_cfg = dataclasses.replace(cfg, chat_template="baichuan-chat")
    model, tok = load_model_and_tokenizer(chat_cfg, str(model_dir), device="cpu")
    assert tok.chat_template == BAICHUAN_CHAT
    scorer = Scorer(model, tok, chat=True, progress=False)
    assert scorer.context("头痛怎么办？", "答案：") == " <reserved_102> 头痛怎么办？ <reserved_103> 答案："


def test_markers_missing_from_the_vocabulary_are_an_error():
    tiny = build_tiny_tokenizer(TEXTS, vocab_size=300)
    with pytest.raises(ValueError, match="'<reserved_102>' is not one token"):
        use_chat_template(tiny, "baichuan-chat")


def test_auto_keeps_a_template_with_generation_markers():
    tiny = build_tiny_tokenizer(TEXTS, vocab_size=300)
    assert use_chat_template(tiny, "auto").chat_template == CHAT_TEMPLATE  # the tiny profile's, unchanged


def test_config_names_a_template_or_a_jinja_file(tmp_path):
    assert load_config("tiny").model.chat_template == "auto"
    assert load_config("paper").model.chat_template == load_config("gpu-small").model.chat_template == "baichuan-chat"
    template = tmp_path / "mine.jinja"
    template.write_text(BAICHUAN_CHAT, "utf-8")
    assert load_config("tiny", {"model.chat_template": str(template)}).model.chat_template == str(template)
    assert load_config("tiny").model.chat_template_kwargs == {}
    assert load_config("tiny", {"model.chat_template_kwargs": {"enable_thinking": False}}
                       ).model.chat_template_kwargs == {"enable_thinking": False}
    with pytest.raises(ConfigError, match="model.chat_template: unknown chat template 'baichuan_chat'; did you mean "
                                          "'baichuan-chat'"):
        load_config("tiny", {"model.chat_template": "baichuan_chat"})
    with pytest.raises(ConfigError, match="model.chat_template: chat template file .* does not exist"):
        load_config("tiny", {"model.chat_template": str(tmp_path / "missing.jinja")})
