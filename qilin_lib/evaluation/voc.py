"""Verification-of-Choice (VoC), after AntGLM-Med (arXiv 2312.01040). OUR INTERPRETATION: the paper
names the method but its prompt is not public.

Instead of asking for the answer letter once, the model judges every option in turn: the question and
ONE candidate answer (its text, without the letter: the verdict must not depend on letter position), then
a request to say 正确 (correct) or 错误 (incorrect) before a short justification. The verification score of an option is

    log P("正确" | verification prompt) - log P("错误" | verification prompt)

(the verdict words scored as continuations, so the score does not depend on how the tokenizer splits them),
and the option with the highest score wins. Single-answer by construction, like `loglik`. The
justification itself is generated only on request (`explain`), for case studies: it does not change the
score, and generating it for every option would multiply the cost of a benchmark by its option count.

The prompt is VOC_PROMPT below; REPORT.md and the VoC table repeat that the prompt is ours.
"""

from __future__ import annotations

from collections.abc import Sequence

VOC_PROMPT = "{question}\n待验证的答案：{option}\n请先判断它正确还是错误，再说明理由。\n判断："
VERDICTS = ("正确", "错误")


def voc_prompt(question: str, option: str) -> str:
    return VOC_PROMPT.format(question=question, option=option)


def verification_scores(scorer, items: Sequence[dict], question=lambda it: it["question"]) -> list[dict[str, float]]:
    """{letter: log P(正确) - log P(错误)} per item, every option verified in its own prompt.

    `scorer` needs `context(body)` and `continuation_logprobs(pairs)` (qilin_lib.evaluation.scoring.Scorer
    or a stub with the same two methods); `question(item)` is the text before the candidate answer
    (PubMedQA: the abstract and the question)."""
    pairs, index = [], []
    for i, it in enumerate(items):
        for letter, option in it["options"].items():
            context = scorer.context(voc_prompt(question(it), option))
            pairs += [(context, VERDICTS[0]), (context, VERDICTS[1])]
            index.append((i, letter))
    lps = scorer.continuation_logprobs(pairs, desc="VoC")
    out: list[dict[str, float]] = [{} for _ in items]
    for k, (i, letter) in enumerate(index):
        out[i][letter] = round(lps[2 * k][0] - lps[2 * k + 1][0], 4)
    return out


def voc(scorer, items: Sequence[dict], explain: bool = False, max_new_tokens: int = 32,
        question=lambda it: it["question"]) -> list[dict]:
    """Prediction rows (`pred` = the best-verified option), with every option's verification score; with
    `explain`, the model's verification of the chosen option as generated text."""
    scores = verification_scores(scorer, items, question)
    rows = [{"id": it["id"], "answer": it["answer"], "scores": s, "pred": max(s, key=s.get)}
            for it, s in zip(items, scores)]
    if explain:
        prompts = [scorer.context(voc_prompt(question(it), it["options"][r["pred"]]))
                   for it, r in zip(items, rows)]
        for row, text in zip(rows, scorer.generate(prompts, max_new_tokens, desc="VoC explain")):
            row["verification"] = text
    return rows
