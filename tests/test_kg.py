"""KG entity -> passage / QA, and the tiny KB loaded into the shared entity schema."""

import random
import re

import pytest

from qilin_lib.data import kg


@pytest.fixture(scope="module")
def entities():
    return kg.kb_entities()


def _entity(**overrides):
    base = dict(name="测试病", id="t-1", source="test", symptoms=["发热", "咳嗽"], causes=["受凉"],
                department=["呼吸内科"], examinations=["血常规", "胸部X线"], drugs=["阿莫西林"],
                complications=["肺炎", "中耳炎", "鼻窦炎"])
    base.update(overrides)
    return kg.new_entity(**base)


def test_kb_entities_follow_the_schema(entities):
    assert len(entities) == 100
    for e in entities:
        assert tuple(e) == kg.ENTITY_KEYS
        assert e["source"] == "tiny_kb" and e["id"].startswith("tiny-kb-")
        assert all(e[f] for f in kg.FIELDS)
    assert len({e["id"] for e in entities}) == len(entities)


def test_passage_contains_every_value_in_every_style(entities):
    rng = random.Random(0)
    for e in entities:
        for style in range(kg.N_STYLES):
            for r in (None, rng):
                text = kg.entity_to_passage(e, rng=r, style=style)
                assert e["name"] in text
                for f in kg.FIELDS:
                    for v in e[f]:
                        assert v in text, (e["name"], style, f, v, text)


def _literal_pieces(template):
    return [p for chunk in re.split(r"\{[^}]*\}", template)
            for p in re.split(r"[，。？、：；！\s——【】（）]+", chunk) if len(p) >= 2]


def test_empty_fields_are_omitted():
    full, no_drugs = _entity(), _entity(drugs=[], complications=[])
    for style in range(kg.N_STYLES):
        text = kg.entity_to_passage(no_drugs, style=style)
        assert "阿莫西林" not in text and "肺炎" not in text
        for f in ("drugs", "complications"):
            for template in kg._STYLES[style]["fields"][f]:
                for piece in _literal_pieces(template):
                    assert piece not in text, (style, piece, text)
        assert len(text) < len(kg.entity_to_passage(full, style=style))
        assert not re.search(r"[：；，]{2}|：。|；。", text)


def test_description_and_extra_are_included():
    e = _entity(description="一种虚构的疾病，用于测试", extra={"传染性": "无", "多发人群": "儿童"})
    for style in range(kg.N_STYLES):
        text = kg.entity_to_passage(e, rng=random.Random(style), style=style)
        assert "一种虚构的疾病，用于测试" in text
        assert "传染性" in text and "多发人群" in text and "儿童" in text


def test_styles_and_rng_vary_the_wording_deterministically(entities):
    e = entities[0]
    by_style = {kg.entity_to_passage(e, style=s) for s in range(kg.N_STYLES)}
    assert len(by_style) == kg.N_STYLES >= 3
    seeded = [kg.entity_to_passage(e, rng=random.Random(7), style=None) for _ in range(2)]
    assert seeded[0] == seeded[1]
    variants = {kg.entity_to_passage(e, rng=random.Random(s), style=None) for s in range(30)}
    assert len(variants) >= 25
    # the canonical (rng-free) passage is stable too
    assert kg.entity_to_passage(e) == kg.entity_to_passage(e, style=0)


def test_new_entity_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown entity fields"):
        kg.new_entity("x", symptom=["发热"])
    e = kg.new_entity("x", symptoms=[" 发热 ", ""])
    assert e["symptoms"] == ["发热"] and e["drugs"] == [] and e["extra"] == {}


def test_join_values():
    assert kg.join_values(["甲"]) == "甲"
    assert kg.join_values(["甲", "乙", "丙"]) == "甲、乙和丙"
    joined = {kg.join_values(["甲", "乙"], random.Random(s)) for s in range(20)}
    assert joined <= {"甲和乙", "甲及乙", "甲、乙"} and len(joined) > 1
