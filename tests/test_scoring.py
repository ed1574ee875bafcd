"""Scorer: the batched, cached paths give the numbers of the plain one-sequence-at-a-time computation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from evalkit import tiny_model_and_tokenizer
from transformers import DynamicCache

from qilin_lib.evaluation import multiple_choice as mc
from qilin_lib.evaluation.scoring import Scorer, _reorder


@pytest.fixture(scope="module")
def scorer():
    model, tokenizer = tiny_model_and_tokenizer()
    return Scorer(model, tokenizer, batch_size=4, progress=False)


def _plain_logprob(scorer, context: str, continuation: str) -> float:
    tok = scorer.tokenizer
    ctx = tok(context, add_special_tokens=False)["input_ids"] or [tok.eos_token_id]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = scorer.model(input_ids=torch.tensor([ctx + cont])).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    return float(sum(lp[len(ctx) - 1 + k, t] for k, t in enumerate(cont)))


def test_continuations_match_plain_forward(scorer):
    pairs = [("肺炎的症状有", "咳嗽"), ("肺炎的症状有", "发热、头痛"), ("答案：", "A"), ("糖尿病的常用药物包括二甲双胍", "。"),
             ("高血压", "患者常有头痛、头晕。"), ("肺炎的症状有", "")]
    got = Scorer(scorer.model, scorer.tokenizer, batch_size=2, progress=False).continuation_logprobs(pairs)
    for (context, continuation), (lp, n) in zip(pairs, got):
        assert n == len(scorer.tokenizer(continuation, add_special_tokens=False)["input_ids"])
        assert lp == pytest.approx(_plain_logprob(scorer, context, continuation) if n else 0.0, abs=1e-4)


def test_next_token_logprobs_do_not_depend_on_left_padding(scorer):
    contexts = ["答案：", "以下是中国关于临床医学考试的单项选择题，请选出其中的正确答案。答案："]
    batched = scorer.next_token_logprobs(contexts, list("ABCD"))
    for i, context in enumerate(contexts):
        alone = scorer.next_token_logprobs([context], list("ABCD"))
        assert torch.allclose(batched[i], alone[0], atol=1e-4)


def test_batched_generation_equals_one_at_a_time(scorer):
    prompts = ["肺炎的症状有", "答案：", "以下是中国关于临床医学考试的单项选择题"]
    batched = scorer.generate(prompts, max_new_tokens=6)
    single = [scorer.generate([p], max_new_tokens=6)[0] for p in prompts]
    assert batched == single


def test_long_prompts_keep_their_end_and_are_counted():
    model, tokenizer = tiny_model_and_tokenizer(max_positions=32)
    s = Scorer(model, tokenizer, progress=False)
    s.next_token_logprobs(["肺炎" * 40 + "答案：", "答案："], ["A"])
    assert s.truncated == 1


class TupleCacheModel(torch.nn.Module):
    """A remote-code model's interface (Baichuan-7B's): `past_key_values` in and out as a tuple of
    (key, value) per layer, no `logits_to_keep`; the numbers are the wrapped Llama's."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=None):
        assert past_key_values is None or isinstance(past_key_values, tuple)
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         cache=DynamicCache(past_key_values) if past_key_values else None, use_cache=use_cache)
        cache = getattr(out, "cache", None) or out.past_key_values
        return SimpleNamespace(logits=out.logits, past_key_values=tuple((l.keys, l.values) for l in cache.layers))


def test_tuple_kv_caches_are_reordered(scorer):
    legacy = Scorer(TupleCacheModel(scorer.model), scorer.tokenizer, batch_size=2, progress=False)
    assert legacy._cache_kwarg == "past_key_values" and not legacy._last_only
    # several continuations per context: the context's cache is copied to each of them
    pairs = [("肺炎的症状有", "咳嗽"), ("肺炎的症状有", "发热、头痛"), ("答案：", "A"), ("高血压", "患者常有头痛、头晕。"),
             ("高血压", "患者常有咳嗽。"), ("答案：", "B C")]
    want = Scorer(scorer.model, scorer.tokenizer, batch_size=2, progress=False).continuation_logprobs(pairs)
    got = legacy.continuation_logprobs(pairs)
    assert [n for _, n in got] == [n for _, n in want]
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in want], abs=1e-4)
    prompts = ["肺炎的症状有", "答案：", "以下是中国关于临床医学考试的单项选择题"]
    assert legacy.generate(prompts, max_new_tokens=6) == scorer.generate(prompts, max_new_tokens=6)


def test_an_unknown_cache_type_names_the_fix():
    with pytest.raises(TypeError, match="qilin convert baichuan"):
        _reorder(object(), torch.tensor([0]))


def test_generation_stops_on_eos_and_the_end_of_turn_marker(scorer):
    tok = scorer.tokenizer  # the tiny model's generation config lists both; the template closes turns with <|end|>
    assert scorer._stop_ids() == [tok.eos_token_id, tok.convert_tokens_to_ids("<|end|>")]


def test_chat_context_wraps_the_prompt_in_the_template(scorer):
    chat = Scorer(scorer.model, scorer.tokenizer, chat=True, progress=False)
    text = chat.context("问题", "答案：")
    assert text.startswith("<s><|user|>\n问题") and text.endswith("<|assistant|>\n答案：")
    assert scorer.context("问题", "答案：") == "问题答案："


class StubScorer:
    """Scores planted per continuation: lets the mode logic be tested without a model."""

    def __init__(self, scores: dict[str, float], neutral: dict[str, float] | None = None):
        self.scores, self.neutral = scores, neutral or {}

    def context(self, body: str, prefix: str = "") -> str:
        return body + prefix

    def continuation_logprobs(self, pairs, desc=""):
        out = []
        for context, cont in pairs:
            table = self.neutral if context == mc.ANSWER_SLOT else self.scores
            out.append((table.get(cont, -10.0), max(len(cont), 1)))
        return out


def test_cloze_variants_read_the_same_scores_differently():
    item = {"id": "1", "question": "Q", "answer": "B", "options": {"A": "常见病", "B": "罕见病名称很长", "C": "无"}}
    stub = StubScorer({"常见病": -2.0, "罕见病名称很长": -3.5, "无": -2.5},
                      neutral={"常见病": -1.0, "罕见病名称很长": -6.0, "无": -2.0})
    preds = {variant: rows[0]["pred"] for variant, rows in mc.cloze(stub, [item]).items()}
    assert preds["cloze_sum"] == "A"             # highest summed log-prob
    assert preds["cloze_token"] == "B"           # -3.5 / 7 tokens is the best per token
    assert preds["cloze_calibrated"] == "B"      # -3.5 - (-6.0) = +2.5 beats -1.0 and -0.5


@pytest.fixture(scope="module")
def dummy_prefix_scorer(tmp_path_factory):
    """A SentencePiece tokenizer with a dummy prefix (as Llama-2's, and Baichuan's when its model file says
    so), converted as qilin_lib.convert does: a lone "A" encodes as ["▁", "A"]."""
    import json

    import sentencepiece as spm
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from qilin_lib.convert import convert_tokenizer

    src = tmp_path_factory.mktemp("spm")
    texts = ["肺炎的症状有咳嗽和发热。答案：A", "高血压患者常有头痛。答案：B", "糖尿病用二甲双胍。答案：C", "胃炎。答案：D", "肝炎。答案：E"] * 20
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_prefix=str(src / "tokenizer"), model_type="bpe",
                                   vocab_size=400, hard_vocab_limit=False, add_dummy_prefix=True, byte_fallback=True,
                                   normalization_rule_name="identity", minloglevel=2, num_threads=1)
    (src / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": False, "add_eos_token": False}))
    convert_tokenizer(src).save_pretrained(src / "fast")
    tokenizer = AutoTokenizer.from_pretrained(src / "fast")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)).eval()
    return Scorer(model, tokenizer, batch_size=2, progress=False)


def test_letters_are_scored_as_the_prompt_plus_letter_tokenizes(dummy_prefix_scorer):
    """lm-evaluation-harness's rule (lm_eval/api/model.py, TemplateLM._encode_pair, v0.4.13): a continuation's
    tokens are encode(context + continuation)[len(encode(context)):]. Alone, "A" is ["▁", "A"]; after "答案："
    it is ["A"], what the model saw in training: its log-prob is read right after the prompt, no "▁" between."""
    s = dummy_prefix_scorer
    tok = lambda text: s.tokenizer(text, add_special_tokens=False)["input_ids"]
    letters = list("ABCDE")
    assert len({tok(c)[0] for c in letters}) == 1 and all(len(tok(c)) == 2 for c in letters)  # "▁" + letter
    contexts = ["肺炎的症状有咳嗽。答案：", "高血压答案："]
    got = s.next_token_logprobs(contexts, letters)
    for i, context in enumerate(contexts):
        assert all(tok(context + c)[:-1] == tok(context) for c in letters)  # one letter token after the prompt
        with torch.no_grad():
            lp = torch.log_softmax(s.model(torch.tensor([tok(context)])).logits[0, -1].float(), -1)
        assert got[i].tolist() == pytest.approx([float(lp[tok(context + c)[-1]]) for c in letters], abs=1e-5)
        summed = s.continuation_logprobs([(context, c) for c in letters])
        assert [n for _, n in summed] == [1] * len(letters)
        assert got[i].tolist() == pytest.approx([x for x, _ in summed], abs=1e-4)
    _, first = s.generate(contexts, max_new_tokens=2, first_token_candidates=letters)
    assert torch.allclose(first, got, atol=1e-5)


def test_candidates_sharing_leading_tokens_are_told_apart_by_the_next_one(dummy_prefix_scorer):
    s = dummy_prefix_scorer
    candidates = ["选项A", "选项B", "选项C"]   # "选项" is not in the tokenizer's vocabulary: shared byte tokens
    contexts = ["肺炎的症状有咳嗽。答案：", "高血压答案："]
    tok = lambda text: s.tokenizer(text, add_special_tokens=False)["input_ids"]
    added = [tok(contexts[0] + c)[len(tok(contexts[0])):] for c in candidates]
    assert len({a[0] for a in added}) == 1 and len({a[-1] for a in added}) == 3   # shared, then told apart
    got = s.next_token_logprobs(contexts, candidates)
    assert all(len(set(row.tolist())) == len(candidates) for row in got)
    for i, context in enumerate(contexts):  # ranked as the candidates' summed log-probabilities are
        summed = [lp for lp, _ in s.continuation_logprobs([(context, c) for c in candidates])]
        shared = summed[0] - float(got[i, 0])
        assert got[i].tolist() == pytest.approx([x - shared for x in summed], abs=1e-4)
    _, first = s.generate(contexts, max_new_tokens=2, first_token_candidates=candidates)
    assert torch.allclose(first, got, atol=1e-5)


def test_the_decoding_loop_gives_transformers_greedy_search_tokens(scorer):
    """Scorer.generate is a hand-written KV-cache loop (less per-step overhead than model.generate); it must
    produce the tokens of transformers' own greedy search, batched and left-padded or not."""
    prompts = ["肺炎的症状有", "答案：", "以下是中国关于临床医学考试的单项选择题，请选出其中的正确答案。", "高血压"]
    tok, model = scorer.tokenizer, scorer.model
    stop = scorer._stop_ids()
    ours = scorer.generate(prompts, max_new_tokens=12)
    for prompt, got in zip(prompts, ours):
        ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12,
                                 eos_token_id=stop, pad_token_id=tok.pad_token_id)[0, ids.shape[1]:].tolist()
        out = out[: next((k for k, t in enumerate(out) if t in stop), len(out))]
        assert got == tok.decode(out, skip_special_tokens=True).strip(), prompt
    assert any(ours)  # the random model does produce tokens, so the comparison has something to compare
