"""Every corpus the tiny profile needs, generated from the repo's own knowledge base (DESIGN.md section 3).

    corpora = generate_tiny_corpora(TinyDataConfig(), seed=42)
    corpora.counts()            # {"cpt_kg": ..., "eval_cmexam": 300, ...}

The diseases of the KB are split three ways (seeded):
- dcpt:    taught by the DCPT corpus and evaluated (MCQ, QA, probes, DPO held-out);
- sft:     taught by the DCPT corpus too, and the only diseases SFT and DPO-train items are about;
- control: in no training text at all (no CPT, SFT or DPO text names them); they appear only in the
           evaluation and probe sets, as the "never taught" baseline.

DCPT corpus. Each fact (disease, field, value) of a taught disease is restated `restatements_per_fact`
times per epoch: the generator runs that many rounds per disease, and every round states every fact of the
disease exactly once, as one KG passage (kg.entity_to_passage), one encyclopedia paragraph, a few QA texts
or a few dialogues (`cpt_mix` sets the shares). Templates, field order and value order vary per round.
The metadata reports the exposures actually found by searching the generated texts.

Evaluation wordings. The question templates of the evaluation sets (EVAL_* and PROBE_* below) are kept
apart from every training template, and `eval_stems()` lists their literal pieces so that a test can check
that no training text contains one: the tables then measure knowledge, not string recall.

Distractors of multiple-choice items are other diseases' values of the same field, drawn in proportion to
how many KB diseases have that value, never a value of the asked disease (nor one that contains or is
contained in one of its values or its name). Answer letters are balanced over positions.
"""

from __future__ import annotations

import dataclasses
import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field

from ..config import TinyDataConfig
from . import kg
from .records import conversation_from_pairs, cpt, dpo, mcq, qa

FIELDS = kg.FIELDS
SOURCE = "tiny_kb"
LETTERS = "ABCDE"
PRIOR_NAME = "某疾病"  # replaces the disease name in the prior-only variant of a question
LABEL = {"causes": "病因", "symptoms": "常见症状", "examinations": "常用检查", "drugs": "常用药物",
         "department": "就诊科室", "complications": "常见并发症"}
CEVAL_SUBJECT = {"causes": "basic_medicine", "symptoms": "clinical_medicine", "examinations": "clinical_medicine",
                 "complications": "clinical_medicine", "drugs": "physician", "department": "physician"}

# =============================================================================== training templates
# "{n}": disease name (or, inside a paragraph after the first mention, 该病/本病); "{v}": joined values.
ENCYC_OPEN = ["{n}是临床常见病之一。", "{n}，是一种多发病。", "本条目介绍{n}。", "{n}是医学上常见的一种疾病。"]
ENCYC = {
    "causes": ["{n}的发生通常与{v}相关。", "导致{n}的原因有{v}。", "从病因上看，{n}主要源于{v}。",
               "{v}可以导致{n}。"],
    "symptoms": ["{n}的临床症状以{v}为主。", "得了{n}的人常有{v}。", "{n}起病后可见{v}等症状。",
                 "{n}常常表现为{v}。"],
    "examinations": ["诊断{n}常用的检查是{v}。", "怀疑{n}时应完善{v}。", "{n}的诊断依靠{v}等检查。",
                     "医生常通过{v}来检查{n}。"],
    "drugs": ["{n}的治疗药物有{v}。", "治疗{n}可以使用{v}。", "{v}是治疗{n}的常用药。",
              "针对{n}，可用药物包括{v}。"],
    "department": ["{n}的诊治由{v}负责。", "得了{n}应到{v}看病。", "{n}归{v}诊治。", "{n}患者通常在{v}就医。"],
    "complications": ["{n}可能导致{v}等并发症。", "{n}控制不好会出现{v}。", "{n}的常见并发症是{v}。",
                      "{n}后期可以继发{v}。"],
}
PRONOUNS = ["该病", "本病"]

# Questions and answers: CPT QA text, SFT single-turn items and DPO-train prompts share them.
QUESTIONS = {
    "causes": ["{n}是什么原因引起的？", "{n}的病因有哪些？", "为什么会得{n}？", "引起{n}的原因是什么？"],
    "symptoms": ["{n}有哪些症状？", "得了{n}会有什么表现？", "{n}的主要症状是什么？", "请介绍一下{n}的症状。"],
    "examinations": ["{n}要做哪些检查？", "怀疑{n}需要查什么？", "诊断{n}要做什么检查？", "{n}一般做什么检查能确诊？"],
    "drugs": ["{n}吃什么药？", "{n}用什么药治疗？", "治疗{n}的常用药有哪些？", "{n}可以用哪些药物？"],
    "department": ["{n}挂什么科？", "{n}应该看哪个科？", "得了{n}去哪个科室？", "{n}属于哪个科的病？"],
    "complications": ["{n}有什么并发症？", "{n}会引起哪些并发症？", "{n}严重了会怎样？", "{n}可能导致什么后果？"],
}
ANSWERS = {
    "causes": ["{n}的病因主要有{v}。", "{n}多由{v}引起。", "引起{n}的原因包括{v}。"],
    "symptoms": ["{n}的常见症状有{v}。", "{n}患者通常会出现{v}。", "得了{n}后，常见表现为{v}。"],
    "examinations": ["{n}常做的检查有{v}。", "诊断{n}一般需要做{v}。", "建议做{v}来明确{n}的诊断。"],
    "drugs": ["{n}的常用药物有{v}。", "治疗{n}常用{v}，请在医生指导下使用。", "{n}可以使用{v}治疗，具体遵医嘱。"],
    "department": ["{n}一般挂{v}。", "{n}应到{v}就诊。", "得了{n}建议去{v}看病。"],
    "complications": ["{n}的并发症有{v}。", "{n}可能引起{v}等并发症。", "如果控制不好，{n}可并发{v}。"],
}
QA_FORMATS = [("问：", "答："), ("【问题】", "【回答】")]

# Dialogues: the patient names the disease in the first turn; follow-ups do not.
PATIENT_FIRST = {
    "causes": ["医生您好，我被诊断为{n}，想知道是什么原因导致的？", "大夫，我怎么会得{n}呢？"],
    "symptoms": ["医生，我怀疑自己得了{n}，这个病有什么症状？", "您好，{n}一般会有哪些不舒服？"],
    "examinations": ["医生，我想查一下是不是{n}，要做什么检查？", "大夫，确诊{n}得做哪些检查？"],
    "drugs": ["医生，我得了{n}，该吃什么药？", "您好，{n}平时用什么药比较好？"],
    "department": ["请问{n}应该挂哪个科？", "医生，我想看{n}，去哪个科室？"],
    "complications": ["医生，{n}会不会引起别的病？", "大夫，{n}拖久了会有什么并发症？"],
}
PATIENT_FOLLOW = {
    "causes": ["那这个病是什么原因引起的？", "我为什么会得这个病呢？"],
    "symptoms": ["这个病还有哪些症状？", "那会有哪些表现呢？"],
    "examinations": ["那需要做哪些检查？", "要查些什么才能确诊？"],
    "drugs": ["那吃什么药好？", "平时可以用哪些药？"],
    "department": ["那我应该挂哪个科？", "去哪个科室看比较好？"],
    "complications": ["不治疗的话会有什么并发症？", "会引起其他问题吗？"],
}
DIALOGUE_ROLES = [("患者", "医生"), ("病人", "大夫")]

# Exam-style items for SFT (teach the answer format; about sft diseases only).
SFT_MCQ_STEMS = {
    "causes": ["{n}的病因可能是以下哪个？", "以下哪个因素可导致{n}？"],
    "symptoms": ["{n}可出现以下哪个症状？", "以下哪个是{n}的症状？"],
    "examinations": ["{n}诊断常做以下哪个检查？", "以下哪个检查用于{n}？"],
    "drugs": ["以下哪个药可治疗{n}？", "{n}可选用以下哪个药物？"],
    "department": ["{n}应到以下哪个科室就诊？", "以下哪个科室诊治{n}？"],
    "complications": ["{n}可并发以下哪个疾病？", "以下哪个是{n}的并发症？"],
}

# DPO held-out prompts/answers: wordings that dpo_train (and SFT) never use.
DPO_HELDOUT_QUESTIONS = {
    "causes": ["{n}这个病是怎么来的？", "哪些因素会让人患上{n}？"],
    "symptoms": ["{n}发作时人会有什么感觉？", "怎么判断自己是不是有{n}的症状？"],
    "examinations": ["到医院查{n}，一般安排哪些项目？", "{n}的确诊靠哪些手段？"],
    "drugs": ["{n}的治疗一般开什么药？", "对付{n}有哪些药？"],
    "department": ["看{n}要去医院哪个科？", "{n}该找哪个科的医生？"],
    "complications": ["{n}如果不管，会发展出什么问题？", "{n}最怕出现哪些并发症？"],
}
DPO_HELDOUT_ANSWERS = ["关于{n}，{label}主要是{v}。", "{n}方面，{label}一般包括{v}。"]
EVASIVE = ["这个问题我不太清楚，建议咨询医生。", "抱歉，我无法回答这个问题，请咨询专业医生。",
           "这个不好说，每个人情况都不一样，建议去医院看看。", "我不确定，你可以自己上网查一查。"]

# ============================================================================ evaluation templates
# Never used by a training text (tests/test_tiny_data.py checks every literal piece of these).
EVAL_CMEXAM_STEMS = {
    "symptoms": ["患者被确诊为{n}，下列哪项最可能是其临床表现？", "下列表现中，最符合{n}特点的是哪一项？"],
    "department": ["怀疑{n}的患者，首诊最适合选择下列哪个科室？", "下列科室中，主要负责诊治{n}的是哪一个？"],
    "examinations": ["为明确{n}的诊断，下列哪项检查最有价值？", "下列检查中，常用于{n}诊断的是哪一项？"],
    "drugs": ["下列药物中，可用于{n}治疗的是哪一种？", "治疗{n}时，下列哪种药物较为常用？"],
    "complications": ["{n}病情进展后，下列哪项属于其并发症？", "下列情况中，可作为{n}并发症出现的是哪一项？"],
    "causes": ["下列因素中，与{n}发病关系最密切的是哪一项？", "关于{n}，下列哪项是其病因之一？"],
}
EVAL_CEVAL_STEMS = {
    "symptoms": ["{n}患者最常见的临床表现之一是____", "下列属于{n}典型表现的是____"],
    "department": ["{n}通常归属的诊疗科室是____", "收治{n}患者的科室一般是____"],
    "examinations": ["对{n}诊断帮助较大的检查是____", "确定{n}诊断时常选择的检查项目是____"],
    "drugs": ["可用于{n}药物治疗的是____", "{n}的药物治疗可选择____"],
    "complications": ["{n}可能并存的并发症是____", "{n}晚期或控制不佳时可出现____"],
    "causes": ["{n}的发病原因之一是____", "与{n}发生相关的因素是____"],
}
EVAL_QA_QUESTIONS = {
    "symptoms": ["请教一下，家里老人刚查出{n}，这种病身体上通常会有哪些异样？"],
    "department": ["想咨询一下，{n}这种情况最好去医院的哪个门诊？"],
    "examinations": ["请教一下，想确认是不是{n}，去医院需要安排哪些项目检查？"],
    "drugs": ["想咨询一下，{n}这种病，医生一般会开哪些药？"],
    "complications": ["请教一下，{n}如果一直拖着不管，会带来哪些麻烦？"],
    "causes": ["想咨询一下，{n}一般是怎么得上的？"],
}
EVAL_QA_ANSWER = "您好，{n}的{label}主要有{v}。建议到正规医院进一步诊治。"
PROBE_TEMPLATES = {
    "symptoms": ["据统计，相当一部分{n}患者会表现出{v}。", "临床观察发现，{n}的病人往往伴有{v}。"],
    "department": ["按照医院的分诊规则，{n}一般交由{v}处理。", "在多数医院，{n}的门诊设在{v}。"],
    "examinations": ["在确诊{n}的过程中，{v}具有重要价值。", "对于疑似{n}的人，医院多会安排{v}。"],
    "drugs": ["在规范治疗中，{v}常被用来控制{n}。", "药物方面，医生处理{n}时多会考虑{v}。"],
    "complications": ["长期随访显示，{n}有时会合并{v}。", "若病程迁延，{n}往往继发{v}。"],
    "causes": ["流行病学资料表明，{v}与{n}的发生密切相关。", "研究认为，{v}在{n}的起病中起重要作用。"],
}

# ===================================================================================== general chat
GREETINGS = [("你好", "你好！我是医疗助手，有什么可以帮你的吗？"),
             ("您好，请问你是谁？", "您好，我是一个人工智能助手，可以回答健康常识和日常问题。"),
             ("谢谢你的帮助", "不客气，祝你生活愉快！"), ("早上好", "早上好！今天有什么需要帮忙的吗？"),
             ("再见", "再见，祝你一切顺利！"), ("你能做什么？", "我可以回答医学常识问题，也可以帮你做简单的计算和换算。")]
UNITS = [("千克", "克", 1000), ("米", "厘米", 100), ("小时", "分钟", 60), ("升", "毫升", 1000), ("千米", "米", 1000),
         ("分钟", "秒", 60)]
SENTENCES = ["今天天气很好", "我喜欢读书", "明天去公园散步", "多喝水有益健康", "早睡早起身体好"]
WORDS = ["春夏秋冬", "山清水秀", "一二三四", "东南西北"]
WEEKDAYS = ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"]


# ========================================================================================= result
@dataclass
class TinyCorpora:
    split: dict = field(default_factory=dict)          # disease -> "dcpt" | "sft" | "control"
    cpt_kg: list = field(default_factory=list)
    cpt_text: list = field(default_factory=list)
    cpt_qa: list = field(default_factory=list)
    cpt_dialogue: list = field(default_factory=list)
    sft_medical_single: list = field(default_factory=list)
    sft_medical_multi: list = field(default_factory=list)
    sft_general: list = field(default_factory=list)
    dpo_train: list = field(default_factory=list)
    dpo_heldout: list = field(default_factory=list)
    eval_cmexam: list = field(default_factory=list)
    eval_ceval_dev: list = field(default_factory=list)
    eval_ceval_val: list = field(default_factory=list)
    eval_qa: list = field(default_factory=list)
    probe_texts: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    CPT = ("cpt_kg", "cpt_text", "cpt_qa", "cpt_dialogue")
    SFT = ("sft_medical_single", "sft_medical_multi", "sft_general")
    DPO = ("dpo_train", "dpo_heldout")
    EVAL = ("eval_cmexam", "eval_ceval_dev", "eval_ceval_val", "eval_qa", "probe_texts")

    @classmethod
    def record_fields(cls) -> tuple[str, ...]:
        return cls.CPT + cls.SFT + cls.DPO + cls.EVAL

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in self.record_fields()}

    @property
    def cpt(self) -> list[dict]:
        return [r for name in self.CPT for r in getattr(self, name)]

    @property
    def sft(self) -> list[dict]:
        return [r for name in self.SFT for r in getattr(self, name)]


def training_texts(corpora: TinyCorpora, include_dpo_heldout: bool = True) -> list[str]:
    """Every string a training stage reads: CPT texts, SFT messages, DPO prompts/chosen/rejected."""
    out = [r["text"] for r in corpora.cpt]
    out += [m["content"] for r in corpora.sft for m in r["messages"]]
    dpo_sets = corpora.DPO if include_dpo_heldout else ("dpo_train",)
    out += [r[k] for name in dpo_sets for r in getattr(corpora, name) for k in ("prompt", "chosen", "rejected")]
    return out


def _template_pieces(template: str, min_chars: int = 4) -> list[str]:
    """Literal runs of a template between placeholders and punctuation, at least `min_chars` long."""
    pieces = []
    for chunk in re.split(r"\{[^}]*\}", template):
        pieces += [p for p in re.split(r"[，。？、：；！,.?:;!\s_（）()“”]+", chunk) if len(p) >= min_chars]
    return pieces


def eval_templates() -> list[str]:
    out = [t for pool in (EVAL_CMEXAM_STEMS, EVAL_CEVAL_STEMS, EVAL_QA_QUESTIONS, PROBE_TEMPLATES)
           for ts in pool.values() for t in ts]
    return out


def eval_stems(min_chars: int = 4) -> list[str]:
    """The literal pieces of every evaluation/probe template (no training text may contain one)."""
    return sorted({p for t in eval_templates() for p in _template_pieces(t, min_chars)})


def format_mcq_prompt(question: str, options: dict[str, str]) -> str:
    """CMExam prompt shape (DESIGN.md section 4): question, `A xxx` option lines, 答案："""
    lines = [question] + [f"{letter} {text}" for letter, text in options.items()]
    return "\n".join(lines) + "\n答案："


# ======================================================================================== helpers
def _join(values: list[str], rng: random.Random) -> str:
    values = list(values)
    rng.shuffle(values)
    return kg.join_values(values, rng)


def _largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    s = sum(weights.values())
    if s <= 0:
        raise ValueError(f"cpt_mix weights must sum to > 0, got {weights}")
    raw = {k: total * w / s for k, w in weights.items()}
    out = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[: total - sum(out.values())]:
        out[k] += 1
    return out


def _cycle(items: list, n: int, rng: random.Random) -> list:
    """n items drawn by passes over `items`, each pass in a fresh random order."""
    out = []
    while len(out) < n and items:
        batch = list(items)
        rng.shuffle(batch)
        out += batch
    return out[:n]


def _chunks(items: list, rng: random.Random, sizes: tuple[int, ...]) -> list[list]:
    out, i = [], 0
    while i < len(items):
        k = rng.choice(sizes)
        out.append(items[i:i + k])
        i += k
    if len(out) > 1 and len(out[-1]) < min(sizes):
        last = out.pop()  # (not `out[-2] += out.pop()`: the pop would shift the index first)
        out[-1] = out[-1] + last
    return out


def _balanced_positions(n: int, k: int, rng: random.Random) -> list[int]:
    positions = [i % k for i in range(n)]
    rng.shuffle(positions)
    return positions


def _group_counts(n: int, n_taught: int, n_control: int) -> tuple[int, int]:
    """Items split between taught and control diseases in proportion to how many there are."""
    if n_taught + n_control == 0:
        return 0, 0
    c = round(n * n_control / (n_taught + n_control))
    return n - c, c


class _KB:
    """Entities by name plus per-field value frequencies (number of KB diseases that have the value)."""

    def __init__(self, entities: list[dict]):
        self.entities = entities
        self.by_name = {e["name"]: e for e in entities}
        self.freq = {f: Counter(v for e in entities for v in e[f]) for f in FIELDS}

    def related(self, entity: dict, value: str) -> bool:
        """True if `value` is, contains or is contained in a value of the entity, or sits inside its name."""
        if value in entity["name"]:
            return True
        return any(value in v or v in value for f in FIELDS for v in entity[f])

    def distractors(self, entity: dict, f: str, k: int, rng: random.Random) -> list[str]:
        """k values of field f from other diseases, drawn without replacement with probability proportional
        to their KB frequency, never a value related to the asked disease."""
        pool = [(v, w) for v, w in sorted(self.freq[f].items()) if not self.related(entity, v)]
        if len(pool) < k:
            raise ValueError(f"only {len(pool)} distractor values for {entity['name']}/{f}, need {k}")
        chosen = []
        for _ in range(k):
            total = sum(w for _, w in pool)
            x, acc = rng.random() * total, 0.0
            for i, (v, w) in enumerate(pool):
                acc += w
                if x < acc:
                    break
            chosen.append(pool.pop(i)[0])
        return chosen

    def wrong_values(self, entity: dict, f: str, rng: random.Random) -> list[str]:
        """The values of field f of another disease, none of them related to `entity`."""
        others = [e for e in self.entities if e["name"] != entity["name"] and e[f]
                  and not any(self.related(entity, v) for v in e[f])]
        values = list(rng.choice(others)[f])
        rng.shuffle(values)
        return values


def _explanation(name: str, f: str, values: list[str], letter: str, answer: str) -> str:
    joined = "、".join(values)
    if len(values) == 1:
        return f"{name}的{LABEL[f]}是{joined}，其余选项均不符合，故选{letter}。"
    return f"{name}的{LABEL[f]}包括{joined}。选项中只有{answer}符合，故选{letter}。"


def _fill(template: str, name: str, values: str = "", label: str = "") -> str:
    return template.format(n=name, v=values, label=label)


# ===================================================================================== generators
def split_diseases(names: list[str], cfg: TinyDataConfig, seed: int) -> dict[str, str]:
    need = cfg.n_dcpt_diseases + cfg.n_sft_diseases + cfg.n_control_diseases
    if need > len(names):
        raise ValueError(f"the split needs {need} diseases, the knowledge base has {len(names)}")
    order = sorted(names)
    random.Random(f"{seed}-split").shuffle(order)
    groups = (["dcpt"] * cfg.n_dcpt_diseases + ["sft"] * cfg.n_sft_diseases
              + ["control"] * cfg.n_control_diseases)
    return dict(zip(order, groups))


def _unique(make, seen: set, tries: int = 20) -> str:
    """A text from `make()` that is not in `seen` (redrawn a few times: exact duplicates would be removed
    by deduplication and silently lower the exposures)."""
    for _ in range(tries):
        text = make()
        if text not in seen:
            break
    seen.add(text)
    return text


def _cpt_corpora(kb: _KB, taught: list[str], cfg: TinyDataConfig, rng: random.Random) -> dict[str, list]:
    out = {"cpt_kg": [], "cpt_text": [], "cpt_qa": [], "cpt_dialogue": []}
    mix = _largest_remainder(cfg.restatements_per_fact, {k: float(v) for k, v in cfg.cpt_mix.items()})
    unknown = set(mix) - {"kg", "text", "qa", "dialogue"}
    if unknown:
        raise ValueError(f"unknown cpt_mix kinds {sorted(unknown)}; use kg, text, qa, dialogue")
    seen: set = set()

    def encyclopedia(e: dict, order: list[str]) -> str:
        parts = [rng.choice(ENCYC_OPEN).format(n=e["name"])]
        for f in order:
            n = e["name"] if rng.random() < 0.5 else rng.choice(PRONOUNS)
            parts.append(_fill(rng.choice(ENCYC[f]), n, _join(e[f], rng)))
        return "".join(parts)

    def qa_text(e: dict, group: list[str]) -> str:
        q_tag, a_tag = rng.choice(QA_FORMATS)
        return "\n".join(f"{q_tag}{_fill(rng.choice(QUESTIONS[f]), e['name'])}\n"
                         f"{a_tag}{_fill(rng.choice(ANSWERS[f]), e['name'], _join(e[f], rng))}" for f in group)

    def dialogue(e: dict, group: list[str]) -> str:
        p_tag, d_tag = rng.choice(DIALOGUE_ROLES)
        turns = []
        for i, f in enumerate(group):
            ask = _fill(rng.choice(PATIENT_FIRST[f]), e["name"]) if i == 0 else rng.choice(PATIENT_FOLLOW[f])
            turns += [f"{p_tag}：{ask}", f"{d_tag}：{_fill(rng.choice(ANSWERS[f]), e['name'], _join(e[f], rng))}"]
        return "\n".join(turns)

    for name in taught:
        e = kb.by_name[name]
        fields = [f for f in FIELDS if e[f]]
        rounds = [kind for kind, k in mix.items() for _ in range(k)]
        rng.shuffle(rounds)
        for kind in rounds:  # one round states every fact of the disease exactly once
            order = list(fields)
            rng.shuffle(order)
            if kind == "kg":
                text = _unique(lambda: kg.entity_to_passage(e, rng, style=None), seen)
                out["cpt_kg"].append(cpt(text, f"{SOURCE}/cpt_kg"))
            elif kind == "text":
                out["cpt_text"].append(cpt(_unique(lambda: encyclopedia(e, order), seen), f"{SOURCE}/cpt_text"))
            elif kind == "qa":
                for group in _chunks(order, rng, (1, 2, 3)):
                    out["cpt_qa"].append(cpt(_unique(lambda: qa_text(e, group), seen), f"{SOURCE}/cpt_qa"))
            else:
                for group in _chunks(order, rng, (2, 3)):
                    out["cpt_dialogue"].append(cpt(_unique(lambda: dialogue(e, group), seen),
                                                   f"{SOURCE}/cpt_dialogue"))
    for records in out.values():
        rng.shuffle(records)
    return out


def _mcq_item(kb: _KB, e: dict, f: str, value: str, stem: str, letter_pos: int, n_options: int,
              rng: random.Random) -> tuple[str, dict[str, str], str, str]:
    """(question, options, answer letter, explanation) with the answer at `letter_pos`."""
    distractors = kb.distractors(e, f, n_options - 1, rng)
    rng.shuffle(distractors)
    texts = distractors[:letter_pos] + [value] + distractors[letter_pos:]
    options = {LETTERS[i]: t for i, t in enumerate(texts)}
    letter = LETTERS[letter_pos]
    return _fill(stem, e["name"]), options, letter, _explanation(e["name"], f, e[f], letter, value)


def _value_picker(kb: _KB, rng: random.Random):
    """Rotates through each (disease, field)'s values so repeated items ask different values."""
    used: Counter = Counter()
    offsets: dict = {}

    def pick(name: str, f: str) -> str:
        values = kb.by_name[name][f]
        key = (name, f)
        if key not in offsets:
            offsets[key] = rng.randrange(len(values))
        value = values[(offsets[key] + used[key]) % len(values)]
        used[key] += 1
        return value
    return pick


def _eval_mcq(kb: _KB, pairs: list[tuple[str, str, str]], stems: dict, n_options: int, prefix: str,
              source: str, subject_of, rng: random.Random) -> list[dict]:
    """pairs: (disease, field, group). One item per pair."""
    pick = _value_picker(kb, rng)
    positions = _balanced_positions(len(pairs), n_options, rng)
    items = []
    for i, ((name, f, group), pos) in enumerate(zip(pairs, positions)):
        e = kb.by_name[name]
        stem = rng.choice(stems[f])
        question, options, letter, expl = _mcq_item(kb, e, f, pick(name, f), stem, pos, n_options, rng)
        rec = mcq(f"{prefix}-{i:04d}", question, options, letter, source, explanation=expl,
                  subject=subject_of(f))
        rec.update({"question_prior": _fill(stem, PRIOR_NAME), "disease": name, "group": group, "field": f})
        items.append(rec)
    return items


def _eval_pairs(names_taught: list[str], names_control: list[str], n: int, rng: random.Random,
                exclude: set = frozenset()) -> list[tuple[str, str, str]]:
    n_t, n_c = _group_counts(n, len(names_taught), len(names_control))
    taught = [(d, f, "taught") for d in names_taught for f in FIELDS if (d, f) not in exclude]
    control = [(d, f, "control") for d in names_control for f in FIELDS if (d, f) not in exclude]
    pairs = _cycle(taught, n_t, rng) + _cycle(control, n_c, rng)
    rng.shuffle(pairs)
    return pairs


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
        single.append(conversation_from_pairs([(format_mcq_prompt(question, options), f"{letter}\n解析：{expl}")],
                                              f"{SOURCE}/sft_mcq"))
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


def _exposures(cpt_records: list[dict], kb: _KB, taught: list[str]) -> dict:
    """Exposures per fact per epoch, by searching the texts: for every record, the diseases it names, and
    for each of them how often each of its values occurs in the record."""
    pattern = re.compile("|".join(re.escape(n) for n in sorted(kb.by_name, key=len, reverse=True)))
    counts = Counter()
    for r in cpt_records:
        text = r["text"]
        for name in set(pattern.findall(text)):
            e = kb.by_name[name]
            for f in FIELDS:
                for v in e[f]:
                    counts[(name, f, v)] += text.count(v)
    per_fact = [counts[(name, f, v)] for name in taught for f in FIELDS for v in kb.by_name[name][f]]
    untaught = sum(c for (name, _, _), c in counts.items() if name not in set(taught))
    return {"min": min(per_fact) if per_fact else 0, "max": max(per_fact) if per_fact else 0,
            "mean": round(statistics.fmean(per_fact), 2) if per_fact else 0.0, "n_facts": len(per_fact),
            "untaught_disease_mentions": untaught}


def count_exposures(cpt_records: list[dict], taught: list[str], kb_path: str | None = None) -> dict:
    """Exposures per fact in a (possibly deduplicated) CPT corpus: what the DCPT model actually sees."""
    return _exposures(cpt_records, _KB(kg.kb_entities(kb_path)), taught)


def generate_tiny_corpora(config: TinyDataConfig | None = None, seed: int = 42,
                          kb_path: str | None = None) -> TinyCorpora:
    """All tiny-profile corpora from the knowledge base; same config and seed -> identical output."""
    cfg = config or TinyDataConfig()
    kb = _KB(kg.kb_entities(kb_path))
    split = split_diseases(list(kb.by_name), cfg, seed)
    dcpt = [n for n, g in split.items() if g == "dcpt"]
    sft_names = [n for n, g in split.items() if g == "sft"]
    control = [n for n, g in split.items() if g == "control"]
    taught = dcpt + sft_names

    def rng(tag: str) -> random.Random:  # one independent stream per corpus
        return random.Random(f"{seed}-{tag}")

    out = TinyCorpora(split=split)
    for name, records in _cpt_corpora(kb, taught, cfg, rng("cpt")).items():
        setattr(out, name, records)
    for name, records in _sft(kb, sft_names, cfg, rng("sft")).items():
        setattr(out, name, records)

    train_answers = lambda f, r: r.choice(ANSWERS[f])  # noqa: E731
    heldout_answers = lambda f, r: r.choice(DPO_HELDOUT_ANSWERS)  # noqa: E731
    out.dpo_train = _dpo(kb, sft_names, cfg.n_dpo_train, QUESTIONS, train_answers, cfg.dpo_evasive_fraction,
                         f"{SOURCE}/dpo_train", rng("dpo_train"))
    out.dpo_heldout = _dpo(kb, dcpt, cfg.n_dpo_heldout, DPO_HELDOUT_QUESTIONS, heldout_answers,
                           cfg.dpo_evasive_fraction, f"{SOURCE}/dpo_heldout", rng("dpo_heldout"))

    # ---- evaluation: dcpt ("taught") and control diseases, wordings no training text uses
    r = rng("cmexam")
    out.eval_cmexam = _eval_mcq(kb, _eval_pairs(dcpt, control, cfg.n_cmexam_items, r), EVAL_CMEXAM_STEMS, 5,
                                "tiny-cmexam", f"{SOURCE}/cmexam", lambda f: kg.FIELD_LABELS[f], r)
    r = rng("ceval")
    dev_pairs = [(d, f, "taught") for d, f in
                 _cycle([(d, f) for d in dcpt for f in FIELDS], cfg.n_ceval_dev, r)]
    out.eval_ceval_dev = _eval_mcq(kb, dev_pairs, EVAL_CEVAL_STEMS, 4, "tiny-ceval-dev", f"{SOURCE}/ceval",
                                   CEVAL_SUBJECT.get, r)
    val_pairs = _eval_pairs(dcpt, control, cfg.n_ceval_items, r, exclude={(d, f) for d, f, _ in dev_pairs})
    out.eval_ceval_val = _eval_mcq(kb, val_pairs, EVAL_CEVAL_STEMS, 4, "tiny-ceval-val", f"{SOURCE}/ceval",
                                   CEVAL_SUBJECT.get, r)
    r = rng("qa")
    for i, (name, f, group) in enumerate(_eval_pairs(dcpt, control, cfg.n_qa_test, r)):
        e = kb.by_name[name]
        rec = qa(f"tiny-qa-{i:04d}", _fill(r.choice(EVAL_QA_QUESTIONS[f]), name),
                 EVAL_QA_ANSWER.format(n=name, label=LABEL[f], v=_join(e[f], r)), f"{SOURCE}/qa_test")
        rec.update({"disease": name, "group": group, "field": f})
        out.eval_qa.append(rec)
    r = rng("probe")
    for name, f, group in _eval_pairs(dcpt, control, cfg.n_probe_texts, r):
        e = kb.by_name[name]
        text = _fill(r.choice(PROBE_TEMPLATES[f]), name, _join(e[f], r))
        out.probe_texts.append({"text": text, "disease": name, "group": group, "field": f})

    cpt_chars = sum(len(rec["text"]) for rec in out.cpt)
    out.metadata = {
        "seed": seed,
        "config": dataclasses.asdict(cfg),
        "kb": {"n_diseases": len(kb.entities), "n_facts_taught": sum(len(kb.by_name[n][f]) for n in taught
                                                                     for f in FIELDS)},
        "groups": {"dcpt": dcpt, "sft": sft_names, "control": control},
        "exposures_per_fact_per_epoch": _exposures(out.cpt, kb, taught),
        "cpt_chars": cpt_chars,
        # tokens ~ chars for a character-level vocab; a byte-level BPE trained on this corpus gives fewer
        "cpt_tokens_estimate": cpt_chars,
        "counts": out.counts(),
    }
    return out
