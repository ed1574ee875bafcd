"""Scorer: the batched, cached paths give the numbers of the plain one-sequence-at-a-time computation."""

from __future__ import annotations

import pytest
import torch
from evalkit import tiny_model_and_tokenizer

from qilin_lib.evaluation import multiple_choice as mc
from qilin_lib.evaluation.scoring import Scorer


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
