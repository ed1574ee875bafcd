"""Every wording of the tiny corpora, and the literal pieces of the evaluation wordings.

Data only, kept in one place so that the split between training and evaluation wordings can be read (and
tested) at a glance: the EVAL_* and PROBE_* templates must never appear in a training text, and
`eval_stems()` lists their literal pieces for tests/test_tiny_data.py to search for.
"""

from __future__ import annotations

import re

from .. import kg

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


# ================================================= literal pieces of the evaluation wordings
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
