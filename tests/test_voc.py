"""Verification-of-Choice picks the option whose verification favours 正确 most (stub scorer)."""

from __future__ import annotations

from qilin_lib.evaluation.voc import VERDICTS, voc, voc_prompt


class VerdictStub:
    """log P(verdict | prompt) planted per option text: 正确 likely for `good`, 错误 for the others."""

    def __init__(self, good: str):
        self.good, self.seen = good, []

    def context(self, body: str, prefix: str = "") -> str:
        return body + prefix

    def continuation_logprobs(self, pairs, desc=""):
        self.seen += pairs
        out = []
        for context, verdict in pairs:
            favoured = VERDICTS[0] if f"待验证的答案：{self.good}\n" in context else VERDICTS[1]
            out.append((-0.1 if verdict == favoured else -3.0, 2))
        return out


def test_voc_chooses_the_best_verified_option():
    items = [{"id": "q1", "question": "糖尿病的常用药物是？", "answer": "C",
              "options": {"A": "青霉素", "B": "阿司匹林", "C": "二甲双胍", "D": "布洛芬"}}]
    stub = VerdictStub(good="二甲双胍")
    rows = voc(stub, items)
    assert rows[0]["pred"] == "C"
    assert rows[0]["scores"]["C"] > 0 > rows[0]["scores"]["A"]
    assert len(stub.seen) == 8  # every option judged, both verdicts scored


def test_voc_scores_each_option_in_its_own_prompt_without_the_letter():
    prompt = voc_prompt("问题？", "二甲双胍")
    assert prompt.startswith("问题？\n") and "二甲双胍" in prompt and prompt.endswith("判断：")
    items = [{"id": "q", "question": "问题？", "answer": "A", "options": {"A": "甲", "B": "乙"}}]
    stub = VerdictStub(good="乙")
    contexts = {c for c, _ in (voc(stub, items) and stub.seen)}
    assert len(contexts) == 2 and all("A " not in c and "B " not in c for c in contexts)


def test_voc_question_function_supplies_the_context():
    items = [{"id": "p", "question": "Is it?", "context": "Abstract.", "answer": "A",
              "options": {"A": "yes", "B": "no", "C": "maybe"}}]
    stub = VerdictStub(good="yes")
    rows = voc(stub, items, question=lambda it: f"Context: {it['context']}\nQuestion: {it['question']}")
    assert rows[0]["pred"] == "A"
    assert all(c.startswith("Context: Abstract.") for c, _ in stub.seen)
