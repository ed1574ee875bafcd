"""The tiny knowledge base and every corpus generated from it (DESIGN.md section 3)."""

import json
import re
import statistics
from collections import Counter
from importlib import resources

import pytest

from qilin_lib.config import TinyDataConfig, load_config
from qilin_lib.data import kg, tiny

FIELDS = kg.FIELDS


@pytest.fixture(scope="module")
def kb():
    return json.loads(resources.files("qilin_lib.data.kb").joinpath("tiny_kb.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def corpora():
    return tiny.generate_tiny_corpora(TinyDataConfig(), seed=42)


@pytest.fixture(scope="module")
def entities():
    return {e["name"]: e for e in kg.kb_entities()}


def _groups(corpora):
    g = {"dcpt": set(), "sft": set(), "control": set()}
    for name, group in corpora.split.items():
        g[group].add(name)
    return g


def _names_in(text, names):
    return {n for n in names if n in text}


# ------------------------------------------------------------------------------------- the KB
def test_kb_shape(kb):
    assert kb["version"] == 1 and "CC0" in kb["license"]
    assert set(kb["fields"]) == set(FIELDS)
    names = [d["name"] for d in kb["diseases"]]
    assert 90 <= len(names) <= 110 and len(set(names)) == len(names)
    for d in kb["diseases"]:
        for f in FIELDS:
            values = d[f]
            assert 1 <= len(values) <= 3, (d["name"], f)
            assert len(set(values)) == len(values)
            assert all(isinstance(v, str) and 1 <= len(v) <= 12 for v in values), (d["name"], f, values)
        assert len(d["department"]) == 1


def test_kb_names_are_searchable(kb):
    """No name inside another name or inside any value, and within a disease no value inside its name or
    inside another of its values: searching for names and values in texts then never confuses diseases
    (control diseases stay out of training text) and counts each fact once."""
    diseases = kb["diseases"]
    names = [d["name"] for d in diseases]
    values = {v for d in diseases for f in FIELDS for v in d[f]}
    for n in names:
        assert not [m for m in names if m != n and n in m], n
        assert not [v for v in values if n in v], n
    for d in diseases:
        own = [v for f in FIELDS for v in d[f]]
        assert len(set(own)) == len(own), d["name"]
        for v in own:
            assert v not in d["name"], (d["name"], v)
            assert not [w for w in own if w != v and v in w], (d["name"], v)


def test_kb_values_recur_across_diseases(kb):
    for f in ("symptoms", "examinations", "causes", "department"):
        freq = Counter(v for d in kb["diseases"] for v in d[f])
        assert freq.most_common(1)[0][1] >= 5, f        # e.g. 发热, 血常规, 遗传因素
        assert sum(1 for c in freq.values() if c > 1) >= 5, f


# ---------------------------------------------------------------------------------- the split
def test_split_sizes_and_counts_match_the_config(corpora):
    cfg = TinyDataConfig()
    g = _groups(corpora)
    assert (len(g["dcpt"]), len(g["sft"]), len(g["control"])) == (
        cfg.n_dcpt_diseases, cfg.n_sft_diseases, cfg.n_control_diseases)
    counts = corpora.counts()
    assert counts["eval_cmexam"] == cfg.n_cmexam_items
    assert counts["eval_ceval_dev"] == cfg.n_ceval_dev == 5
    assert counts["eval_ceval_val"] == cfg.n_ceval_items
    assert counts["eval_qa"] == cfg.n_qa_test
    assert counts["probe_texts"] == cfg.n_probe_texts
    assert counts["sft_medical_single"] == cfg.n_sft_single
    assert sum(r["source"].endswith("sft_mcq") for r in corpora.sft_medical_single) == cfg.n_sft_mcq
    assert counts["sft_medical_multi"] == cfg.n_sft_multi
    assert counts["sft_general"] == cfg.n_general_sft
    assert counts["dpo_train"] == cfg.n_dpo_train and counts["dpo_heldout"] == cfg.n_dpo_heldout
    assert all(counts[k] > 0 for k in tiny.TinyCorpora.CPT)
    assert corpora.metadata["counts"] == counts
    assert set(corpora.as_dict()) >= set(counts) | {"split", "metadata"}


def test_a_small_config_scales(entities):
    cfg = TinyDataConfig(n_dcpt_diseases=6, n_sft_diseases=3, n_control_diseases=2, restatements_per_fact=4,
                         n_cmexam_items=25, n_ceval_items=11, n_qa_test=9, n_probe_texts=13, n_sft_single=17,
                         n_sft_mcq=5, n_sft_multi=7, n_general_sft=6, n_dpo_train=19, n_dpo_heldout=8)
    c = tiny.generate_tiny_corpora(cfg, seed=3)
    assert Counter(c.split.values()) == {"dcpt": 6, "sft": 3, "control": 2}
    counts = c.counts()
    assert (counts["eval_cmexam"], counts["eval_ceval_val"], counts["eval_qa"], counts["probe_texts"]) == (25, 11, 9, 13)
    assert (counts["sft_medical_single"], counts["sft_medical_multi"], counts["sft_general"]) == (17, 7, 6)
    assert (counts["dpo_train"], counts["dpo_heldout"]) == (19, 8)
    exp = c.metadata["exposures_per_fact_per_epoch"]
    assert exp["min"] == exp["max"] == 4
    assert exp["n_facts"] == sum(len(entities[n][f]) for n, g in c.split.items() if g != "control" for f in FIELDS)
    with pytest.raises(ValueError, match="needs"):
        tiny.generate_tiny_corpora(TinyDataConfig(n_dcpt_diseases=200))


# ------------------------------------------------------------------- what training text contains
def test_control_diseases_never_appear_in_training_text(corpora):
    g = _groups(corpora)
    all_names = set(corpora.split)
    texts = tiny.training_texts(corpora)
    assert len(texts) > 5000
    for text in texts:
        assert not _names_in(text, g["control"]), text
    # and every CPT record is about exactly one taught disease
    for r in corpora.cpt:
        assert len(_names_in(r["text"], all_names)) == 1 and not _names_in(r["text"], g["control"])


def test_each_stage_uses_its_own_diseases(corpora):
    g = _groups(corpora)
    names = set(corpora.split)
    for r in corpora.sft_medical_single + corpora.sft_medical_multi:
        assert _names_in(r["messages"][0]["content"], names) <= g["sft"]
        assert _names_in(" ".join(m["content"] for m in r["messages"]), names), r
    for r in corpora.sft_general:
        assert not _names_in(" ".join(m["content"] for m in r["messages"]), names)
    for r in corpora.dpo_train:
        assert len(_names_in(r["prompt"], names)) == 1 and _names_in(r["prompt"], names) <= g["sft"]
    for r in corpora.dpo_heldout:
        assert len(_names_in(r["prompt"], names)) == 1 and _names_in(r["prompt"], names) <= g["dcpt"]
    cpt_names = set().union(*(_names_in(r["text"], names) for r in corpora.cpt))
    assert cpt_names == g["dcpt"] | g["sft"]
    for rec in corpora.eval_cmexam + corpora.eval_ceval_dev + corpora.eval_ceval_val + corpora.eval_qa + corpora.probe_texts:
        assert rec["group"] == ("control" if corpora.split[rec["disease"]] == "control" else "taught")
        assert corpora.split[rec["disease"]] in ("dcpt", "control")
    assert {r["group"] for r in corpora.eval_cmexam} == {"taught", "control"}


def test_eval_question_stems_never_appear_in_training_text(corpora):
    stems = tiny.eval_stems()
    assert len(stems) >= 30
    blob = "\n".join(tiny.training_texts(corpora))
    assert not [s for s in stems if s in blob]
    # the stems do occur in the evaluation sets themselves (the check above is not vacuous)
    eval_blob = "\n".join([r["question"] for r in corpora.eval_cmexam + corpora.eval_ceval_val + corpora.eval_qa]
                          + [r["text"] for r in corpora.probe_texts])
    assert sum(s in eval_blob for s in stems) >= 0.9 * len(stems)
    # and no training template is an evaluation template
    training_templates = {t for pool in (tiny.QUESTIONS, tiny.SFT_MCQ_STEMS, tiny.PATIENT_FIRST,
                                         tiny.DPO_HELDOUT_QUESTIONS) for ts in pool.values() for t in ts}
    assert not training_templates & set(tiny.eval_templates())


def test_task_adaptation_split_and_question_variants(corpora):
    """cmexam_train: the sft diseases only, in SFT's exam wordings, 5 options; each test item carries a
    prior-only variant (name removed) and a recall variant (a training wording, same disease and field)."""
    names = set(corpora.split)
    g = _groups(corpora)
    train = corpora.eval_cmexam_train
    assert len(train) == 300 and all(len(r["options"]) == 5 for r in train)
    assert all(_names_in(r["question"], names) == {r["disease"]} <= g["sft"] for r in train)
    stems = {t for ts in tiny.SFT_MCQ_STEMS.values() for t in ts}
    assert all(any(r["question"] == t.format(n=r["disease"]) for t in stems) for r in train)
    for r in corpora.eval_cmexam:
        assert r["disease"] not in r["question_prior"] and tiny.PRIOR_NAME in r["question_prior"]
        assert r["question_recall"] in {t.format(n=r["disease"]) for t in tiny.QUESTIONS[r["field"]]}


def test_dpo_heldout_wordings_are_unused_in_dpo_train(corpora):
    def template(prompt):
        return re.sub("|".join(map(re.escape, sorted(corpora.split, key=len, reverse=True))), "{n}", prompt)
    train = {template(r["prompt"]) for r in corpora.dpo_train}
    heldout = {template(r["prompt"]) for r in corpora.dpo_heldout}
    assert train and heldout and not train & heldout


def test_dpo_chosen_grounded_rejected_wrong_or_evasive(corpora, entities):
    names = set(corpora.split)
    n_evasive = 0
    for r in corpora.dpo_train + corpora.dpo_heldout:
        (name,) = _names_in(r["prompt"], names)
        e = entities[name]
        fields = [f for f in FIELDS if all(v in r["chosen"] for v in e[f])]
        assert fields, r
        if r["rejected"] in tiny.EVASIVE:
            n_evasive += 1
        else:
            assert not any(v in r["rejected"] for f in fields for v in e[f]), r
    total = len(corpora.dpo_train) + len(corpora.dpo_heldout)
    assert 0.2 < n_evasive / total < 0.4


# ----------------------------------------------------------------------------- the MCQ sets
def _mcq_sets(corpora):
    return [("cmexam", corpora.eval_cmexam, 5), ("ceval_dev", corpora.eval_ceval_dev, 4),
            ("ceval_val", corpora.eval_ceval_val, 4)]


def test_mcq_answers_and_distractors(corpora, entities):
    for _, items, k in _mcq_sets(corpora):
        for item in items:
            e = entities[item["disease"]]
            assert len(item["options"]) == k and len(set(item["options"].values())) == k
            assert len(item["answer"]) == 1
            assert item["options"][item["answer"]] in e[item["field"]]
            own = {v for f in FIELDS for v in e[f]}
            for letter, text in item["options"].items():
                if letter != item["answer"]:
                    assert text not in own, item
                    assert any(text in other[item["field"]] for other in entities.values())
            assert item["explanation"] and item["answer"] in item["explanation"]
            assert e["name"] in item["question"] and e["name"] not in item["question_prior"]
            assert tiny.PRIOR_NAME in item["question_prior"]
            assert item["question_prior"] == item["question"].replace(e["name"], tiny.PRIOR_NAME)
    for item in corpora.eval_ceval_dev + corpora.eval_ceval_val:
        assert item["question"].endswith("____")
        assert item["subject"] in ("clinical_medicine", "physician", "basic_medicine")
    dev = {(i["disease"], i["field"]) for i in corpora.eval_ceval_dev}
    assert not dev & {(i["disease"], i["field"]) for i in corpora.eval_ceval_val}


def test_answer_letters_are_balanced(corpora):
    for name, items, k in _mcq_sets(corpora)[::2]:
        letters = Counter(i["answer"] for i in items)
        assert set(letters) == set("ABCDE"[:k]), name
        assert max(letters.values()) - min(letters.values()) <= 1, (name, letters)
    sft_mcq = [r for r in corpora.sft_medical_single if r["source"].endswith("sft_mcq")]
    letters = Counter(r["messages"][-1]["content"][0] for r in sft_mcq)
    assert max(letters.values()) - min(letters.values()) <= 1


def test_distractor_frequencies_follow_the_kb(entities):
    c = tiny.generate_tiny_corpora(TinyDataConfig(n_cmexam_items=2400, restatements_per_fact=1, n_sft_single=4,
                                                  n_sft_mcq=2, n_sft_multi=2, n_dpo_train=2, n_dpo_heldout=2),
                                   seed=5)
    for f in FIELDS:
        kb_freq = Counter(v for e in entities.values() for v in e[f])
        seen = Counter(text for item in c.eval_cmexam if item["field"] == f
                       for letter, text in item["options"].items() if letter != item["answer"])
        values = sorted(kb_freq)
        r = statistics.correlation([kb_freq[v] for v in values], [seen[v] for v in values])
        assert r > 0.8, (f, r)


# ------------------------------------------------------------------------ other eval records
def test_qa_and_probe_records(corpora, entities):
    for r in corpora.eval_qa:
        assert set(r) >= {"id", "question", "answer", "source", "disease", "group", "field"}
        assert r["disease"] in r["question"]
        assert all(v in r["answer"] for v in entities[r["disease"]][r["field"]])
    for r in corpora.probe_texts:
        assert set(r) == {"text", "disease", "group", "field"}
        assert r["disease"] in r["text"]
        assert all(v in r["text"] for v in entities[r["disease"]][r["field"]])
    assert Counter(r["group"] for r in corpora.probe_texts) == {"taught": 180, "control": 60}


def test_record_shapes(corpora):
    for r in corpora.cpt:
        assert set(r) == {"text", "source"} and r["text"]
    for r in corpora.sft:
        assert r["messages"][-1]["role"] == "assistant" and r["messages"][0]["role"] == "user"
    multi_turns = Counter(len(r["messages"]) // 2 for r in corpora.sft_medical_multi)
    assert set(multi_turns) <= {2, 3} and len(multi_turns) == 2
    for r in corpora.dpo_train + corpora.dpo_heldout:
        assert set(r) == {"prompt", "chosen", "rejected", "source"}
    sft_mcq = next(r for r in corpora.sft_medical_single if r["source"].endswith("sft_mcq"))
    assert re.search(r"\nA .+\nB .+\nC .+\nD .+\nE .+\n答案：$", sft_mcq["messages"][0]["content"])
    assert re.match(r"^[A-E]\n解释:", sft_mcq["messages"][1]["content"])   # CMExam's separator, ASCII colon


# -------------------------------------------------------------------------- exposures per fact
def test_exposures_per_fact_by_searching_the_texts(corpora, entities):
    cfg = TinyDataConfig()
    exp = corpora.metadata["exposures_per_fact_per_epoch"]
    r = cfg.restatements_per_fact
    assert 0.8 * r <= exp["min"] <= exp["mean"] <= exp["max"] <= 1.5 * r
    epochs = load_config("tiny").dcpt.epochs
    assert 50 <= exp["mean"] * epochs <= 80          # DESIGN.md: knowledge appears at 50-80 exposures
    # recount independently for a few diseases
    taught = sorted(n for n, g in corpora.split.items() if g != "control")
    texts = [r["text"] for r in corpora.cpt]
    for name in taught[:5]:
        mine = [t for t in texts if name in t]
        for f in FIELDS:
            for v in entities[name][f]:
                assert 0.8 * r <= sum(t.count(v) for t in mine) <= 1.5 * r
    # the four CPT subsets all restate facts, in varied wordings
    assert corpora.metadata["cpt_chars"] == sum(len(t) for t in texts)
    assert len(set(texts)) == len(texts)


# --------------------------------------------------------------------------------- determinism
def test_same_seed_same_output():
    a = tiny.generate_tiny_corpora(seed=11)
    b = tiny.generate_tiny_corpora(seed=11)
    assert a.as_dict() == b.as_dict()
    assert json.dumps(a.as_dict(), ensure_ascii=False) == json.dumps(b.as_dict(), ensure_ascii=False)
    c = tiny.generate_tiny_corpora(seed=12)
    assert c.split != a.split and c.cpt_kg != a.cpt_kg
