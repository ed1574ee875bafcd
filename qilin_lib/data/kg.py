"""Knowledge-graph disease entities -> text, and the tiny knowledge base in that schema.

Qilin-Med builds part of ChiMed-CPT from medical knowledge graphs (CPubMed-KG, 39Health-KG, Xywy-KG) by
aggregating "all features of one disease entity" into one passage. Every KG loader in this package (the
xywy loader, the tiny KB below) produces entities in one schema, so this module is the only place that
turns an entity into text:

    {"id", "name", "description": str, "symptoms": [str], "causes": [str], "department": [str],
     "examinations": [str], "drugs": [str], "complications": [str], "extra": {str: str}, "source": str}

`entity_to_passage` has several phrasing styles (a record-like card, narrative prose, a semicolon list,
an "aspect by aspect" paragraph); with an `rng` it also varies the template of each field, the field
order and the value order, so that a fact restated many times is not restated in one fixed string.
Empty fields are left out. Everything is deterministic given the rng's seed.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path


# The six list fields of an entity, in the order a passage uses when no rng shuffles them.
FIELDS = ("causes", "symptoms", "examinations", "drugs", "department", "complications")
FIELD_LABELS = {"symptoms": "症状", "department": "科室", "examinations": "检查", "drugs": "常用药物",
                "complications": "并发症", "causes": "病因"}
ENTITY_KEYS = ("id", "name", "description", *FIELDS, "extra", "source")


def new_entity(name: str, id: str = "", source: str = "", description: str = "", extra: dict | None = None,
               **fields: list[str]) -> dict:
    """An entity in the shared schema; unknown field names are an error, missing ones are empty lists."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown entity fields {sorted(unknown)}; known: {', '.join(FIELDS)}")
    entity = {"id": id or name, "name": name, "description": description or ""}
    for f in FIELDS:
        entity[f] = [str(v).strip() for v in fields.get(f) or [] if str(v).strip()]
    entity["extra"] = {str(k): str(v) for k, v in (extra or {}).items()}
    entity["source"] = source
    return entity


# ------------------------------------------------------------------------------------ templates
# "{n}" is the disease name, "{v}" the joined values. Each style has an opening, one template list per
# field and a closing; the rng picks one template per slot.
_STYLES = [
    {   # 0: record-like card, as a KG dump reads
        "open": ["疾病名称：{n}。", "【{n}】", "{n}（疾病条目）。"],
        "desc": ["简介：{d}。"],
        "fields": {
            "causes": ["病因：{v}。", "发病原因：{v}。"],
            "symptoms": ["症状：{v}。", "临床表现：{v}。", "主要症状：{v}。"],
            "examinations": ["检查：{v}。", "辅助检查：{v}。", "检查项目：{v}。"],
            "drugs": ["常用药物：{v}。", "治疗药物：{v}。", "用药：{v}。"],
            "department": ["就诊科室：{v}。", "科室：{v}。", "所属科室：{v}。"],
            "complications": ["并发症：{v}。", "可能并发：{v}。"],
        },
        "extra": ["{k}：{x}。"],
        "sep": "",
    },
    {   # 1: narrative prose
        "open": ["{n}是一种常见疾病。", "{n}是临床上较常见的疾病。", "下面介绍{n}。"],
        "desc": ["{d}。"],
        "fields": {
            "causes": ["其发病多与{v}有关。", "{n}的病因主要包括{v}。", "{v}是{n}的常见病因。"],
            "symptoms": ["患者常出现{v}等症状。", "{n}的典型症状有{v}。", "本病主要表现为{v}。"],
            "examinations": ["辅助检查包括{v}。", "确诊{n}一般要做{v}。", "{n}可通过{v}等检查协助诊断。"],
            "drugs": ["治疗可选用{v}等药物。", "{n}的常用药物有{v}。", "临床上常用{v}治疗{n}。"],
            "department": ["患者一般到{v}就诊。", "{n}属于{v}的诊治范围。", "就诊科室为{v}。"],
            "complications": ["如不及时治疗，可能并发{v}。", "{n}的并发症包括{v}。", "病情进展可引起{v}等并发症。"],
        },
        "extra": ["{k}方面，{x}。"],
        "sep": "",
    },
    {   # 2: one line, semicolon-separated
        "open": ["{n}——", "{n}："],
        "desc": ["{d}；"],
        "fields": {
            "causes": ["病因为{v}；", "原因：{v}；"],
            "symptoms": ["症状为{v}；", "表现：{v}；"],
            "examinations": ["需做{v}；", "检查：{v}；"],
            "drugs": ["用药为{v}；", "药物：{v}；"],
            "department": ["看{v}；", "科室：{v}；"],
            "complications": ["并发症为{v}；", "可并发{v}；"],
        },
        "extra": ["{k}：{x}；"],
        "sep": "",
    },
    {   # 3: aspect by aspect
        "open": ["关于{n}：", "{n}的知识要点如下。"],
        "desc": ["概述方面，{d}。"],
        "fields": {
            "causes": ["病因方面，{n}多由{v}引起。", "病因方面，主要是{v}。"],
            "symptoms": ["症状方面，{n}常见{v}。", "症状方面，多有{v}。"],
            "examinations": ["检查方面，{n}常做{v}。", "检查方面，可选{v}。"],
            "drugs": ["用药方面，{n}常用{v}。", "用药方面，可用{v}。"],
            "department": ["就诊方面，{n}应看{v}。", "就诊方面，宜挂{v}。"],
            "complications": ["并发症方面，{n}可出现{v}。", "并发症方面，需警惕{v}。"],
        },
        "extra": ["{k}方面，{x}。"],
        "sep": "",
    },
]
N_STYLES = len(_STYLES)


def join_values(values: list[str], rng: random.Random | None = None) -> str:
    """A、B和C / A、B及C / A、B、C (the rng picks; without one: A、B和C)."""
    values = list(values)
    if len(values) == 1:
        return values[0]
    last = rng.choice(["和", "及", "、"]) if rng else "和"
    return "、".join(values[:-1]) + last + values[-1]


def entity_to_passage(entity: dict, rng: random.Random | None = None, style: int | None = 0) -> str:
    """All features of one disease entity in one passage. `style` picks the phrasing family (None with an
    rng: a random one); the rng varies templates, field order and value order; empty fields are omitted."""
    if style is None:
        style = rng.randrange(N_STYLES) if rng else 0
    spec = _STYLES[style % N_STYLES]

    def pick(options: list[str]) -> str:
        return rng.choice(options) if rng else options[0]

    name = entity["name"]
    parts = [pick(spec["open"]).format(n=name)]
    description = (entity.get("description") or "").strip().rstrip("。；;.")
    if description:
        parts.append(pick(spec["desc"]).format(d=description, n=name))
    fields = [f for f in FIELDS if entity.get(f)]
    if rng:
        rng.shuffle(fields)
    for f in fields:
        values = list(entity[f])
        if rng:
            rng.shuffle(values)
        parts.append(pick(spec["fields"][f]).format(n=name, v=join_values(values, rng)))
    for key, value in (entity.get("extra") or {}).items():
        value = str(value).strip().rstrip("。；;.")
        if value:
            parts.append(pick(spec["extra"]).format(k=key, x=value))
    text = spec["sep"].join(parts)
    return text[:-1] + "。" if text.endswith("；") else text


# ----------------------------------------------------------------------------------- tiny KB
def kb_entities(path: str | Path | None = None) -> list[dict]:
    """The tiny knowledge base (qilin_lib/data/kb/tiny_kb.json, or `path`) as entities in the schema."""
    if path is None:
        text = resources.files("qilin_lib.data.kb").joinpath("tiny_kb.json").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    kb = json.loads(text)
    entities = []
    for i, d in enumerate(kb["diseases"]):
        entities.append(new_entity(d["name"], id=f"tiny-kb-{i:03d}", source="tiny_kb",
                                   description=d.get("description", ""), extra=d.get("extra"),
                                   **{f: d.get(f, []) for f in FIELDS}))
    return entities
