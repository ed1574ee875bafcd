"""Every source loader on the real sample files in ../shared/data, plus bad inputs written to tmp_path.

Counts and values come from each folder's SOURCE.md (or, where noted, from the file itself).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from qilin_lib.data.errors import DataFormatError
from qilin_lib.data.sources import (LOADER_KINDS, LOADERS, iter_chimed_cpt_txt, load_ceval_csv,
                                    load_ceval_subject, load_chimed_cpt_txt, load_chimed_dpo_json,
                                    load_chimed_sft_jsonl, load_cmedqa2_json, load_cmexam_alpaca_json,
                                    load_cmexam_csv, load_cmexam_xlsx, load_cmtmedqa_json, load_cnmleqa_json,
                                    load_huatuo26m_json, load_kg_instruct_jsonl, load_medicalgpt_pretrain_txt,
                                    load_medicalgpt_rag_jsonl, load_medicalgpt_reward_jsonl,
                                    load_medicalgpt_sft_jsonl, load_medqa_alpaca_json, load_pubmedqa_json,
                                    load_pubmedqa_rows, load_qasystem_dicts, load_qasystem_kg_csv,
                                    load_source, load_toyhom_csv, load_xywy_kg_json, load_zhongjing_ranking,
                                    load_zhongjing_ranking_input, open_source)
from qilin_lib.data.sources.cmexam import MISSING_ANSWER, parse_options
from qilin_lib.data.sources.medicalgpt import is_heading
from qilin_lib.data.sources.zhongjing import IDENTICAL_PAIR

KINDS = {"mcq", "qa", "cpt", "sft", "dpo", "kg", "pubmedqa"}


@pytest.fixture(scope="module")
def cmexam_val(shared_data):
    """val.xlsx is the one slow read (about 1-2 s): load it once for the module."""
    return load_cmexam_xlsx(shared_data / "cmexam" / "val.xlsx")


def _write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- registry

def test_registry_names_and_kinds():
    expected = {"cmexam_csv", "cmexam_xlsx", "cmexam_alpaca_json", "ceval_csv", "huatuo26m_json",
                "pubmedqa_json", "medqa_alpaca_json", "cnmleqa_json", "xywy_kg_json", "qasystem_kg_csv",
                "kg_instruct_jsonl", "medicalgpt_pretrain_txt", "medicalgpt_sft_jsonl",
                "medicalgpt_reward_jsonl", "medicalgpt_rag_jsonl", "cmtmedqa_json", "cmedqa2_json",
                "zhongjing_ranking", "toyhom_csv", "chimed_cpt_txt", "chimed_sft_jsonl", "chimed_dpo_json"}
    assert set(LOADERS) == expected == set(LOADER_KINDS)
    assert set(LOADER_KINDS.values()) <= KINDS
    with pytest.raises(ValueError, match="unknown loader"):
        load_source("no_such_loader", "x")


def test_load_source_dispatches(shared_data):
    recs = load_source("medicalgpt_rag_jsonl", shared_data / "medicalgpt_medical/rag/medical_corpus.txt",
                       max_records=5)
    assert len(recs) == 5 and recs.stats.loaded == 5


# ---------------------------------------------------------------- CMExam

def test_cmexam_official_csv(shared_data):
    recs = load_cmexam_csv(shared_data / "cmexam" / "test_10_official.csv")  # BOM, real newlines
    assert len(recs) == 9  # the file name says 10
    first = recs[0]
    assert first["answer"] == "C"
    assert first["options"] == {"A": "市容监督机关", "B": "城市规划行政部门", "C": "卫生行政主管部门",
                                "D": "检验检疫行政主管部门", "E": "环境保护行政部门"}
    assert first["question"].startswith("对医疗废物的收集")  # no BOM glued to anything
    assert first["explanation"].startswith("根据《医疗废物管理条例》")
    assert first["subject"] == "临床医学" and first["source"] == "cmexam"
    assert recs[1]["answer"] == "D" and recs[1]["subject"] == "中药学"


def test_cmexam_val_xlsx(cmexam_val):
    assert len(cmexam_val) == 6810
    assert cmexam_val.stats.skipped == 1 and cmexam_val.stats.reasons == {MISSING_ANSWER: 1}
    assert Counter(len(r["answer"]) for r in cmexam_val) == {1: 6600, 2: 35, 3: 96, 4: 61, 5: 18}
    assert Counter(len(r["options"]) for r in cmexam_val) == {5: 6605, 4: 205}  # + the skipped 5-option row
    assert cmexam_val[0]["options"]["B"] == "出血部位" and cmexam_val[0]["answer"] == "C"
    by_id = {r["id"]: r for r in cmexam_val}
    assert "5356" not in by_id  # the nan-answer row
    multi = [r for r in cmexam_val if r["question"].startswith("地面水中硫酸盐含量骤然增加时")]
    assert [r["answer"] for r in multi] == ["ABC"]
    # options that skip a letter keep their real letters (letter != list index)
    gaps = {r["id"]: ("".join(r["options"]), r["answer"]) for r in cmexam_val
            if "".join(r["options"]) not in ("ABCDE", "ABCD")}
    assert gaps == {"5589": ("BCDE", "C"), "5596": ("BCDE", "E"), "6027": ("ABDE", "A")}
    assert by_id["5589"]["options"]["B"] == "盐酸多巴酚丁胺"
    assert sum(not r["explanation"] for r in cmexam_val) == 1039


def test_cmexam_csv_resave_equals_xlsx(shared_data, cmexam_val):
    recs = load_cmexam_csv(shared_data / "cmexam" / "val_from_xlsx.csv")  # literal backslash-n, "nan"
    assert recs == cmexam_val
    assert recs.stats.reasons == {MISSING_ANSWER: 1}


def test_cmexam_alpaca_json_and_reconstructed_csv(shared_data):
    alpaca = load_cmexam_alpaca_json(shared_data / "cmexam" / "test_sample300.json")
    assert len(alpaca) == 300
    assert alpaca[1]["answer"] == "D" and alpaca[1]["options"]["D"] == "穿心莲"
    rebuilt = load_cmexam_csv(shared_data / "cmexam" / "test_sample300_reconstructed.csv")
    assert len(rebuilt) == 300 and rebuilt[0]["id"] == "0"
    for a, b in zip(alpaca, rebuilt):
        assert (a["question"], a["options"], a["answer"]) == (b["question"], b["options"], b["answer"])
    official = load_cmexam_csv(shared_data / "cmexam" / "test_10_official.csv")
    assert [r["answer"] for r in official] == [r["answer"] for r in alpaca[:9]]


def test_parse_options_both_newline_styles():
    assert parse_options("A 甲\nB 乙") == parse_options("A 甲\\nB 乙") == {"A": "甲", "B": "乙"}
    with pytest.raises(ValueError, match="twice"):
        parse_options("A 甲\nA 乙")


def test_cmexam_bad_rows(tmp_path):
    bad = _write(tmp_path / "bad.csv", 'Question,Options,Answer\n问1,"A 甲\nB 乙",A\n问2,"A 甲\nB 乙",F\n'
                                       '问3,"A 甲\nB 乙",nan\n问4,"A 甲\nB 乙",\n')
    with pytest.raises(DataFormatError) as info:
        load_cmexam_csv(bad)
    assert "bad.csv" in str(info.value) and "row 3" in str(info.value) and "'F'" in str(info.value)
    recs = load_cmexam_csv(bad, errors="skip")
    assert len(recs) == 1 and recs.stats.skipped == 3
    assert recs.stats.reasons[MISSING_ANSWER] == 2  # nan and empty: skipped as the source says


def test_cmexam_alpaca_answer_matching_no_option(tmp_path):
    items = [{"instruction": "x", "input": "问题：问\n选项：\n\t甲\n\t乙", "output": "丙"},
             {"instruction": "x", "input": "问题：问\n选项：\n\t甲\n\t乙", "output": "乙"}]
    bad = _write(tmp_path / "alpaca.json", json.dumps(items, ensure_ascii=False))
    with pytest.raises(DataFormatError, match=r"alpaca\.json: record item 0: .*matches no option"):
        load_cmexam_alpaca_json(bad)
    recs = load_cmexam_alpaca_json(bad, errors="skip")
    assert [r["answer"] for r in recs] == ["B"] and recs.stats.skipped == 1


def _xlsx(path, columns: dict):
    import pandas as pd

    pd.DataFrame(columns).to_excel(path, index=False)
    return path


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_cmexam_corrupt_workbook_names_the_file(tmp_path, errors):
    good = _xlsx(tmp_path / "good.xlsx", {"Question": ["问"], "Options": ["A 甲\\nB 乙"], "Answer": ["A"]})
    assert [r["answer"] for r in load_cmexam_xlsx(good)] == ["A"]
    random_bytes = tmp_path / "random.xlsx"
    random_bytes.write_bytes(bytes(range(256)) * 8)
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for bad in (random_bytes, truncated):
        with pytest.raises(DataFormatError, match="not a readable xlsx workbook") as info:
            load_cmexam_xlsx(bad, errors=errors)
        assert str(bad) in str(info.value)


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_cmexam_header_without_required_columns_is_a_file_error(tmp_path, errors):
    """Under errors="skip" a missing Answer column used to skip every row as a `nan` answer, silently."""
    columns = {"Question": ["问1", "问2"], "Options": ["A 甲\\nB 乙"] * 2, "Key": ["A", "B"]}
    xlsx = _xlsx(tmp_path / "renamed.xlsx", columns)
    csv = _write(tmp_path / "renamed.csv", 'Question,Options,Key\n问1,"A 甲\nB 乙",A\n')
    for path, load in ((xlsx, load_cmexam_xlsx), (csv, load_cmexam_csv)):
        with pytest.raises(DataFormatError) as info:
            load(path, errors=errors)
        message = str(info.value)
        assert str(path) in message and "['Answer']" in message and "'Key'" in message


# ---------------------------------------------------------------- C-Eval

def test_ceval_csv(shared_data):
    root = shared_data / "ceval_medical"
    for subject, n_val in {"clinical_medicine": 8, "basic_medicine": 7, "physician": 17,
                           "veterinary_medicine": 8}.items():
        dev = load_ceval_csv(root / "dev" / f"{subject}_dev.csv")
        assert len(dev) == 5 and all(r["explanation"] for r in dev)
        assert [r["id"] for r in dev] == ["0", "1", "2", "3", "4"]
        assert {r["subject"] for r in dev} == {subject}
        assert len(load_ceval_csv(root / "val_sample" / f"{subject}_val.csv")) == n_val
    dev = load_ceval_csv(root / "dev" / "clinical_medicine_dev.csv")
    assert dev[0]["answer"] == "A" and dev[0]["question"].endswith("____")
    assert "\n" in dev[0]["explanation"] and "\r" not in dev[0]["explanation"]  # CRLF rows, LF inside


def test_ceval_subject_layouts(shared_data, tmp_path):
    split = load_ceval_subject(shared_data / "ceval_medical", "physician")  # val_sample/ layout
    assert len(split["dev"]) == 5 and len(split["val"]) == 17 and split["val"][0]["answer"] == "A"
    (tmp_path / "dev").mkdir()
    (tmp_path / "val").mkdir()
    header = "id,question,A,B,C,D,answer"
    _write(tmp_path / "dev" / "toy_dev.csv", f"{header},explanation\r\n0,问,a,b,c,d,B,因为\r\n")
    _write(tmp_path / "val" / "toy_val.csv", f'{header}\r\n0,"两行\n问题",a,b,c,d,D\r\n')
    split = load_ceval_subject(tmp_path, "toy")
    assert split["val"][0]["question"] == "两行\n问题" and split["val"][0]["subject"] == "toy"


# ---------------------------------------------------------------- open QA

def test_huatuo26m(shared_data, tmp_path):
    recs = load_huatuo26m_json(shared_data / "huatuo26m_test" / "huatuo26M_test_sample500.json")
    assert len(recs) == 500 and len({r["id"] for r in recs}) == 500
    assert recs[0]["question"] == "做了腰间盘穿丁手术后，用盐泡脚可以吗"
    assert recs[0]["answer"].startswith("问题分析：") and recs[0]["source"] == "huatuo26m"
    hf = _write(tmp_path / "test_datasets.jsonl", '{"questions": "问一", "answers": "答一"}\n'
                                                   '{"questions": ["问二"], "answers": ["答二"]}\n')
    assert [(r["question"], r["answer"]) for r in load_huatuo26m_json(hf)] == [("问一", "答一"), ("问二", "答二")]


def test_cmedqa2(shared_data):
    recs = load_cmedqa2_json(shared_data / "cmedqa2_test" / "test_sample500.json")
    assert len(recs) == 500
    assert recs[0]["question"].startswith("我的右脚外踝骨折一年多")  # the role prompt is not the question
    assert recs[0]["answer"].startswith("你的情况考虑局部有炎症")


# ---------------------------------------------------------------- PubMedQA

def test_pubmedqa_json(shared_data):
    recs = load_pubmedqa_json(shared_data / "pubmedqa" / "pqal_trainval.json")
    assert len(recs) == 500
    assert Counter(r["answer"] for r in recs) == {"yes": 276, "no": 169, "maybe": 55}
    first = recs[0]
    assert first["id"] == "10808977" and first["question"].startswith("Can tailored interventions")
    assert first["context"] == "\n".join(first["contexts"]) and len(first["labels"]) == len(first["contexts"])
    assert first["labels"][:2] == ["BACKGROUND", "DESIGN"] and first["long_answer"]
    assert set(first) == {"id", "question", "context", "contexts", "labels", "answer", "long_answer",
                          "source"}


def test_pubmedqa_hf_rows():
    row = {"pubid": 1, "question": "Q?", "context": {"contexts": ["a", "b"], "labels": ["X", "Y"]},
           "long_answer": "L", "final_decision": "maybe"}
    recs = load_pubmedqa_rows([row, dict(row, final_decision="perhaps")], errors="skip")
    assert recs[0]["id"] == "1" and recs[0]["context"] == "a\nb" and recs[0]["answer"] == "maybe"
    assert recs.stats.skipped == 1
    with pytest.raises(DataFormatError, match="item 1.*perhaps"):
        load_pubmedqa_rows([row, dict(row, final_decision="perhaps")])


# ---------------------------------------------------------------- exam JSON (MedQA, CNMLEQA)

def test_medqa_alpaca_json(shared_data, tmp_path):
    recs = load_medqa_alpaca_json(shared_data / "medqa_mainland_test" / "test_sample300.json")
    assert len(recs) == 300 and all(len(r["options"]) == 4 for r in recs)
    assert recs[0]["answer"] == "D" and recs[0]["options"]["D"] == "24小时内"
    ambiguous = [{"input": "问题：问\n选项：\n\t甲\n\t乙\n\t甲\n\t丁", "output": "甲"}]
    bad = _write(tmp_path / "medqa.json", json.dumps(ambiguous, ensure_ascii=False))
    with pytest.raises(DataFormatError, match=r"medqa\.json: record item 0: .*ambiguous.*AC"):
        load_medqa_alpaca_json(bad)
    assert load_medqa_alpaca_json(bad, errors="skip").stats.skipped == 1


def test_cnmleqa_json(shared_data):
    recs = load_cnmleqa_json(shared_data / "cnmleqa" / "CNMLEQA-3k_sample300.json")
    assert len(recs) == 300 and all(len(r["options"]) == 5 for r in recs)
    assert recs[0]["id"] == "413f38dc-3df2-5955-8858-16e460462f44"
    assert recs[0]["answer"] == "B" and recs[0]["options"]["B"] == "肾上腺皮质增多症定性"
    assert Counter(r["answer"] for r in recs) == {"B": 70, "A": 64, "C": 61, "D": 55, "E": 50}


# ---------------------------------------------------------------- knowledge graphs

def test_xywy_kg(shared_data, tmp_path):
    recs = load_xywy_kg_json(shared_data / "medical_kg_xywy" / "medical_0.json")
    assert len(recs) == 500 and len({r["id"] for r in recs}) == 500
    first = recs[0]
    assert first["id"] == "medical_0:0" and first["name"] == "百日咳" and first["source"] == "xywy_kg"
    assert first["department"] == ["儿科", "小儿内科"] and "干咳" in first["symptoms"]
    assert first["complications"] == ["支气管肺炎", "肺不张"] and first["drugs"][0] == "穿心莲内酯片"
    assert len(first["causes"]) == 1 and first["causes"][0].startswith("(一)发病原因")
    assert first["extra"]["cure_prob"] == "98%" and first["extra"]["cure_way"] == "药物治疗、支持性治疗"
    assert isinstance(first["description"], str) and first["description"].startswith("百日咳")
    for r in recs:
        for field in ("symptoms", "causes", "department", "examinations", "drugs", "complications"):
            assert all(isinstance(x, str) and x and x == x.strip() for x in r[field])
        assert all(isinstance(v, str) for v in r["extra"].values())
    assert load_xywy_kg_json(shared_data / "medical_kg_xywy") == recs  # directory form
    # keys restart at "0" in every file: ids stay unique; files are read in numeric order
    one = {"gaishu_info": {"name": "甲病", "desc": "d"}}
    for n in (2, 10):
        _write(tmp_path / f"medical_{n}.json", json.dumps({"0": one}, ensure_ascii=False))
    assert [r["id"] for r in load_xywy_kg_json(tmp_path)] == ["medical_2:0", "medical_10:0"]


def test_qasystem_kg_csv_and_dicts(shared_data):
    root = shared_data / "qasystem_medicalkg_partial"
    recs = load_qasystem_kg_csv(root / "medical_data.csv")
    assert len(recs) == 21 and recs[0]["name"] == "肺泡蛋白质沉积症"
    assert recs[0]["symptoms"][:3] == ["紫绀", "胸痛", "呼吸困难"]
    assert recs[0]["department"] == ["内科", "呼吸内科"] and recs[0]["extra"]["medical_insurance"] == "否"
    pertussis = recs[1]
    assert pertussis["examinations"][0] == "耳、鼻、咽拭子细菌培养"  # 、 is inside a value, not a separator
    assert pertussis["drugs"][:2] == ["穿心莲内酯片", "百咳静糖浆"] and "琥乙红霉素片" in pertussis["drugs"]
    assert "\n" in pertussis["causes"][0]
    assert set(recs[0]) == set(load_xywy_kg_json(shared_data / "medical_kg_xywy/medical_0.json")[0])
    names = load_qasystem_dicts(root / "dict")
    assert set(names) == {"disease", "symptom", "check", "drug", "food", "producer", "department"}
    # wc -l says 8,806 / 53 because the last line has no newline
    assert len(names["disease"]) == 8807 and len(names["department"]) == 54
    assert names["disease"][0] == "后发性白内障"


def test_kg_instruct_jsonl(shared_data):
    recs = load_kg_instruct_jsonl(shared_data / "huatuo_llama_kg_instruct" / "llama_data.json")
    assert len(recs) == 8658 and recs[0]["source"] == "bentsao_kg_instruct"
    assert [m["role"] for m in recs[0]["messages"]] == ["user", "assistant"]
    assert recs[0]["messages"][0]["content"].startswith("一名年龄在70岁的女性")


def test_malformed_json_line(tmp_path):
    bad = _write(tmp_path / "llama_data.json",
                 '{"instruction": "问1", "input": "补充", "output": "答1"}\n{"instruction": "问2", "output": }\n'
                 '{"instruction": "问3", "input": "", "output": "答3"}\n')
    with pytest.raises(DataFormatError) as info:
        load_kg_instruct_jsonl(bad)
    assert "llama_data.json: record line 2" in str(info.value)
    recs = load_kg_instruct_jsonl(bad, errors="skip")
    assert len(recs) == 2 and recs.stats.skipped == 1 and recs.stats.loaded == 2
    assert recs[0]["messages"][0]["content"] == "问1\n补充"


def test_mis_encoded_json_line_costs_one_record(tmp_path):
    """Invalid UTF-8 on one line: the file's other records load; the skip reason and the error name the
    file and the line, for the loaders that read whole files and for the streaming ones alike."""
    ok = [json.dumps({"instruction": f"问{n}", "output": f"答{n}",
                      "conversations": [{"from": "human", "value": f"问{n}"}, {"from": "gpt", "value": "答"}]},
                     ensure_ascii=False).encode() for n in (1, 3)]
    bad = tmp_path / "sft.jsonl"
    bad.write_bytes(ok[0] + b'\n{"instruction": "\xff\xfe\xe9", "output": "x"}\n' + ok[1] + b"\n")
    for load in (load_kg_instruct_jsonl, load_medicalgpt_sft_jsonl, load_chimed_sft_jsonl, load_chimed_cpt_txt):
        recs = load(bad, errors="skip")
        assert len(recs) == 2 and recs.stats.skipped == 1, load.__name__
        [reason] = recs.stats.reasons
        assert "not valid utf-8" in reason and str(bad) in reason and "line 2" in reason, load.__name__
        with pytest.raises(DataFormatError, match="not valid utf-8") as info:
            load(bad)
        assert f"{bad}: record line 2" in str(info.value), load.__name__


def test_mis_encoded_documents_stay_file_errors(tmp_path):
    """A JSON array cannot lose one line, and a file in another encoding is one error saying which."""
    array = tmp_path / "array.json"
    array.write_bytes(b'[{"instruction": "a", "output": "b"},\n{"instruction": "\xff", "output": "b"}]')
    with pytest.raises(DataFormatError, match=r"array\.json: not valid utf-8 at line 2"):
        load_kg_instruct_jsonl(array, errors="skip")
    gbk = _write(tmp_path / "gbk.jsonl", '{"instruction": "问", "output": "答"}\n' * 2, "gbk")
    with pytest.raises(DataFormatError, match=r"gbk\.jsonl: not valid utf-8 at line 1.*encoding='gbk'"):
        load_kg_instruct_jsonl(gbk, errors="skip")


# ---------------------------------------------------------------- MedicalGPT

def test_medicalgpt_pretrain(shared_data):
    recs = load_medicalgpt_pretrain_txt(shared_data / "medicalgpt_medical" / "pretrain" / "fever.txt")
    assert recs[0]["text"].startswith("第一章论\n传染病是指由病原微生物")
    assert len(recs) == 668  # 985 non-empty lines, headings merged
    assert not any(is_heading(r["text"].split("\n")[-1]) for r in recs)  # no record ends in a heading
    assert any(r["text"].endswith("（李兰娟）") for r in recs)  # attribution kept with its paragraph
    text = open(shared_data / "medicalgpt_medical/pretrain/fever.txt", encoding="utf-8").read()
    assert sum(len(line.strip()) for line in text.splitlines()) == sum(
        len(r["text"].replace("\n", "")) for r in recs)  # nothing lost


def test_medicalgpt_sft_reward_rag(shared_data):
    root = shared_data / "medicalgpt_medical"
    sft = load_medicalgpt_sft_jsonl(root / "sft" / "medical_sft_1K_format.jsonl")
    assert len(sft) == 1000 and all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in sft)
    reward = load_medicalgpt_reward_jsonl(root / "reward" / "test.json")  # JSON lines despite .json
    assert len(reward) == 100
    assert reward[0] == {"prompt": "肛门病变可能是什么疾病的症状?", "chosen": "食管克罗恩病",
                         "rejected": "肛门病变可能与多种不同类型的病症有关。", "source": "medicalgpt_reward"}
    rag = load_medicalgpt_rag_jsonl(root / "rag" / "medical_corpus.txt")
    assert len(rag) == 87 and rag[0]["answer"] == "食管克罗恩病"


# ---------------------------------------------------------------- ZhongJing

def test_cmtmedqa(shared_data, tmp_path):
    path = shared_data / "cmtmedqa_test" / "CMtMedQA_test_sample300.json"
    recs = load_cmtmedqa_json(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert len(recs) == 300
    assert all(len(r["messages"]) == 2 * (len(x["history"]) + 1) for r, x in zip(recs, raw))
    assert recs[0]["messages"][0]["content"].startswith("医生，我得了恶性乳腺癌中期")
    assert recs[0]["messages"][-1]["content"].startswith("不客气")
    safety = _write(tmp_path / "safety.json", json.dumps([{"instruct": " 医生，是不是恶魔附身？",
                                                            "output": " 发烧是常见的症状。"}], ensure_ascii=False))
    msgs = load_cmtmedqa_json(safety)[0]["messages"]
    assert msgs == [{"role": "user", "content": "医生，是不是恶魔附身？"},
                    {"role": "assistant", "content": "发烧是常见的症状。"}]


def test_zhongjing_ranking(shared_data):
    root = shared_data / "zhongjing_rlhf_label_sample"
    pairs = load_zhongjing_ranking(root / "output_result.tsv")
    # 2 ranked rows x 6 pairs; row 0 ranks the same text 1st and 4th: that pair says nothing
    assert len(pairs) == 11 and pairs.stats.reasons == {IDENTICAL_PAIR: 1}
    assert pairs[0]["prompt"] == "非常感谢您的建议，我会尽量按照您的建议来做。谢谢！"
    assert pairs[0]["chosen"].startswith("不客气，我很高兴能够帮助到您。")
    assert load_zhongjing_ranking(root) == pairs
    cands = load_zhongjing_ranking_input(root)
    assert len(cands) == 10 and all(len(c["responses"]) == 4 for c in cands)
    assert [len(c["history"]) for c in cands] == [0, 0, 0, 0, 0, 3, 4, 2, 4, 3]


# ---------------------------------------------------------------- Toyhom (GBK)

def test_toyhom_gbk_csv(shared_data):
    path = shared_data / "toyhom_dialogue" / "内科_sample3000.csv"
    recs = load_toyhom_csv(path)
    assert len(recs) == 3000
    user, assistant = recs[0]["messages"]
    assert user["content"] == ("高血压患者能吃党参吗？\n"
                               "我有高血压这两天女婿来的时候给我拿了些党参泡水喝，您好高血压可以吃党参吗？")
    assert assistant["content"].startswith("高血压病人可以口服党参的")
    with pytest.raises(DataFormatError) as info:
        load_toyhom_csv(path, encoding="utf-8")
    assert "内科_sample3000.csv" in str(info.value) and "gbk" in str(info.value)


def test_toyhom_bad_row(tmp_path):
    bad = _write(tmp_path / "t.csv", "department,title,ask,answer\n内科,标题,问,答\n内科,标题,问,\n", "gbk")
    with pytest.raises(DataFormatError, match=r"t\.csv: record row 3"):
        load_toyhom_csv(bad)
    assert load_toyhom_csv(bad, errors="skip").stats.skipped == 1


# ---------------------------------------------------------------- ChiMed (released files; no sample)

def test_chimed_cpt_streams(tmp_path):
    path = tmp_path / "cpt.txt"
    path.write_bytes("\ufeff文档一\n\n  文档二  \n".encode() + b"\xff\xfe bad\n" + "文档三\n".encode())
    with pytest.raises(DataFormatError, match="cpt.txt: record line 4"):
        list(iter_chimed_cpt_txt(path))
    it = iter_chimed_cpt_txt(path, errors="skip")
    assert next(it) == {"text": "文档一", "source": "chimed_cpt"}  # a generator: nothing read ahead
    assert [r["text"] for r in it] == ["文档二", "文档三"]
    recs = load_chimed_cpt_txt(path, errors="skip")
    assert len(recs) == 3 and recs.stats.skipped == 1
    assert [r["text"] for r in load_chimed_cpt_txt(path, max_records=2)] == ["文档一", "文档二"]


def test_chimed_sft_shapes(shared_data, tmp_path):
    lines = [{"conversations": [{"from": "system", "value": "你是医生"}, {"from": "human", "value": "问"},
                                {"from": "gpt", "value": "答"}]},
             {"messages": [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}]},
             {"instruction": "问", "input": "补充", "output": "答", "history": [["早", "好"]]}]
    path = _write(tmp_path / "sft.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    recs = load_chimed_sft_jsonl(path)
    assert [[m["role"] for m in r["messages"]] for r in recs] == [
        ["system", "user", "assistant"], ["user", "assistant"], ["user", "assistant", "user", "assistant"]]
    assert recs[2]["messages"][2]["content"] == "问\n补充"
    assert len(load_chimed_sft_jsonl(path, max_records=2)) == 2
    real = load_chimed_sft_jsonl(shared_data / "medicalgpt_medical/sft/medical_sft_1K_format.jsonl")
    assert len(real) == 1000


def test_chimed_dpo_shapes(shared_data, tmp_path):
    objs = [{"instruction": "问1", "response_accepted": "好1", "response_rejected": "差1"},
            {"prompt": "问2", "chosen": "好2", "rejected": "差2"},
            {"question": "问3", "response_chosen": "好3", "response_rejected": "差3"}]
    expected = [("问1", "好1", "差1"), ("问2", "好2", "差2"), ("问3", "好3", "差3")]
    layouts = {"array.json": json.dumps(objs, ensure_ascii=False),
               "lines.json": "\n".join(json.dumps(o, ensure_ascii=False) for o in objs),
               "pretty.json": "\n".join(json.dumps(o, ensure_ascii=False, indent=4) for o in objs)}
    for name, text in layouts.items():
        recs = load_chimed_dpo_json(_write(tmp_path / name, text))
        assert [(r["prompt"], r["chosen"], r["rejected"]) for r in recs] == expected, name
    assert len(load_chimed_dpo_json(shared_data / "medicalgpt_medical/reward/test.json")) == 100


# ---------------------------------------------------------------- streams (the data stage's way in)

def test_open_source_streams_chimed_files_with_stats_filled_as_they_go(tmp_path):
    path = tmp_path / "cpt.txt"
    path.write_bytes("文档一\n".encode() + b"\xff bad\n" + "文档二\n文档三\n".encode())
    stream = open_source("chimed_cpt_txt", path, errors="skip")
    assert (stream.stats.loaded, stream.stats.skipped) == (0, 0)  # nothing read yet
    it = iter(stream)
    assert next(it)["text"] == "文档一" and (stream.stats.loaded, stream.stats.skipped) == (1, 0)
    assert next(it)["text"] == "文档二" and (stream.stats.loaded, stream.stats.skipped) == (2, 1)
    assert [r["text"] for r in it] == ["文档三"] and stream.stats.loaded == 3
    with pytest.raises(RuntimeError, match="read once"):
        list(stream)
    limited = open_source("chimed_cpt_txt", path, errors="skip", max_records=2)
    assert len(list(limited)) == 2 and (limited.stats.loaded, limited.stats.skipped) == (2, 1)


@pytest.mark.parametrize("loader, name", [("chimed_sft_jsonl", "sft.jsonl"), ("chimed_dpo_json", "dpo.json")])
def test_open_source_gives_what_the_loader_gives(shared_data, loader, name):
    path = shared_data / "chimed_format" / name
    stream = open_source(loader, path, errors="skip", max_records=50)
    loaded = load_source(loader, path, errors="skip", max_records=50)
    assert list(stream) == list(loaded) and stream.stats.as_dict() == loaded.stats.as_dict()


def test_open_source_wraps_a_list_loader(shared_data):
    """Formats read whole (a CSV here) are loaded, then handed out one by one with their complete stats."""
    stream = open_source("cmexam_csv", shared_data / "cmexam" / "val_from_xlsx.csv", max_records=20)
    assert stream.stats.loaded == 20 and len(list(stream)) == 20 and stream.stats.loaded == 20
