"""The post-training corpora: SFT conversations (medical single/multi-turn, exam items, general chat) and
DPO preference pairs. They only ever name sft diseases (dpo_heldout names dcpt ones), never control ones.
"""

from __future__ import annotations

import random

from ...config import TinyDataConfig
from .. import kg
from ..chimed import EXPLANATION_MARK
from ..records import conversation_from_pairs, dpo
from .kb import _KB
from .mcq import _mcq_item, _value_picker, format_mcq_prompt
from .sampling import _balanced_positions, _cycle, _fill, _join
from .templates import (ANSWERS, EVASIVE, FIELDS, GREETINGS, LABEL, PATIENT_FOLLOW, QUESTIONS, SENTENCES,
                        SFT_MCQ_STEMS, SOURCE, UNITS, WEEKDAYS, WORDS)


def _sft(kb: _KB, sft_names: list[str], cfg: TinyDataConfig, rng: random.Random) -> dict[str, list]:
    pairs = [(d, f) for d in sft_names for f in FIELDS]
    n_mcq = min(cfg.n_sft_mcq, cfg.n_sft_single)
    single = []
    for name, f in _cycle(pairs, cfg.n_sft_single - n_mcq, rng):
        e = kb.by_name[name]
        q = _fill(rng.choice(QUESTIONS[f]), name)
        a = _fill(rng.choice(ANSWERS[f]), name, _join(e[f], rng))
        single.append(conversation_from_pairs([(q, a)], f"{SOURCE}/sft_single"))
    pick = _value_picker(kb, rng)
    mcq_pairs = _cycle(pairs, n_mcq, rng)
    for (name, f), pos in zip(mcq_pairs, _balanced_positions(len(mcq_pairs), 5, rng)):
        e = kb.by_name[name]
        question, options, letter, expl = _mcq_item(kb, e, f, pick(name, f), rng.choice(SFT_MCQ_STEMS[f]),
                                                    pos, 5, rng)
        answer = f"{letter}\n{EXPLANATION_MARK}{expl}"  # CMExam's layout: the letter line, then "解释:"
        single.append(conversation_from_pairs([(format_mcq_prompt(question, options), answer)], f"{SOURCE}/sft_mcq"))
    rng.shuffle(single)

    multi = []
    for name in _cycle(sft_names, cfg.n_sft_multi, rng):
        e = kb.by_name[name]
        fields = rng.sample([f for f in FIELDS if e[f]], rng.choice((2, 3)))
        turns = []
        for i, f in enumerate(fields):
            q = _fill(rng.choice(QUESTIONS[f]), name) if i == 0 else rng.choice(PATIENT_FOLLOW[f])
            turns.append((q, _fill(rng.choice(ANSWERS[f]), name, _join(e[f], rng))))
        multi.append(conversation_from_pairs(turns, f"{SOURCE}/sft_multi"))
    return {"sft_medical_single": single, "sft_medical_multi": multi,
            "sft_general": _general_sft(cfg.n_general_sft, rng)}


def _general_sft(n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            q, a = rng.choice(GREETINGS)
        elif kind == 1:
            a_, b_ = rng.randint(2, 99), rng.randint(2, 99)
            op = rng.choice(["加", "减", "乘以"])
            c = a_ + b_ if op == "加" else a_ - b_ if op == "减" else a_ * b_
            q = rng.choice(["{a}{op}{b}等于多少？", "请计算{a}{op}{b}。"]).format(a=a_, op=op, b=b_)
            a = f"{a_}{op}{b_}等于{c}。"
        elif kind == 2:
            big, small, factor = rng.choice(UNITS)
            x = rng.randint(1, 20)
            q = rng.choice(["{x}{u}等于多少{s}？", "请把{x}{u}换算成{s}。"]).format(x=x, u=big, s=small)
            a = f"{x}{big}等于{x * factor}{small}。"
        elif kind == 3:
            choice = rng.randrange(3)
            if choice == 0:
                s = rng.choice(SENTENCES)
                q, a = f"请把下面这句话重复一遍：{s}", f"{s}。"
            elif choice == 1:
                w = rng.choice(WORDS)
                q, a = f"请把“{w}”倒过来写。", f"倒过来写是：{w[::-1]}。"
            else:
                start = rng.randint(1, 20)
                q, a = f"请从{start}数到{start + 4}。", "、".join(str(k) for k in range(start, start + 5)) + "。"
        else:
            if rng.random() < 0.5:
                k = rng.randint(1, 7)
                q, a = f"一周中的第{k}天是星期几？", f"按星期一为第一天计算，第{k}天是{WEEKDAYS[k - 1]}。"
            else:
                nums = rng.sample(range(1, 100), 3)
                q = f"{nums[0]}、{nums[1]}、{nums[2]}中哪个数最大？"
                a = f"最大的数是{max(nums)}。"
        out.append(conversation_from_pairs([(q, a)], f"{SOURCE}/sft_general"))
    return out


def _dpo(kb: _KB, names: list[str], n: int, questions: dict, answer_for, evasive_fraction: float,
         source: str, rng: random.Random) -> list[dict]:
    pairs = _cycle([(d, f) for d in names for f in FIELDS], n, rng)
    evasive = [i < round(n * evasive_fraction) for i in range(len(pairs))]
    rng.shuffle(evasive)
    out = []
    for (name, f), is_evasive in zip(pairs, evasive):
        e = kb.by_name[name]
        template = answer_for(f, rng)
        chosen = template.format(n=name, v=_join(e[f], rng), label=LABEL[f])
        if is_evasive:
            rejected = rng.choice(EVASIVE)
        else:
            rejected = template.format(n=name, v=kg.join_values(kb.wrong_values(e, f, rng), rng), label=LABEL[f])
        out.append(dpo(_fill(rng.choice(questions[f]), name), chosen, rejected, source))
    return out
