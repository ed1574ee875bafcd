"""The contamination check (qilin_lib.data.decontam) and the data card, on real benchmark samples with
planted copies: exact and near copies are found, clean items are not, shares and drops are counted."""

import json

import pandas as pd
import pytest

from qilin_lib.config import DedupConfig, load_config
from qilin_lib.data import sources
from qilin_lib.data.card import CARD_FILE, licence
from qilin_lib.data.chimed import mcq_prompt, mcq_to_text
from qilin_lib.data.decontam import ContaminationCheck, item_texts, training_units
from qilin_lib.data.stage import run_data_stage
from qilin_lib.data.tables import write_data_tables


@pytest.fixture(scope="module")
def benchmarks(shared_data):
    cmexam = list(sources.load_cmexam_csv(shared_data / "cmexam" / "test_10_official.csv"))
    huatuo = list(sources.load_huatuo26m_json(shared_data / "huatuo26m_test" / "huatuo26M_test_sample500.json"))
    return {"cmexam": cmexam, "huatuo26m": huatuo[:20]}


def _edited(text: str) -> str:
    """Two characters substituted: a near copy (5-gram Jaccard ~0.7 on a 69-character question)."""
    return text[:20] + "甲" + text[21:45] + "乙" + text[46:]


def _conv(user: str, assistant: str, source: str = "planted") -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
            "source": source, "category": "medical", "turns": "single"}


def _planted(benchmarks) -> list[dict]:
    cmexam, huatuo = benchmarks["cmexam"], benchmarks["huatuo26m"]
    assert len(cmexam[7]["question"]) > 60  # long enough for the near test (min_chars 20)
    return [_conv(cmexam[0]["question"], "请结合法规作答。"),                  # question, exact
            _conv(_edited(cmexam[7]["question"]), "应选择合适的降压药。"),     # question, near
            _conv(huatuo[0]["question"], huatuo[0]["answer"]),                # question and question+answer, exact
            _conv("今天天气怎么样？适合出去散步吗？请给些建议。", "天气晴朗，适合散步。")]  # clean


def test_planted_copies_are_found_and_clean_items_are_not(benchmarks):
    check = ContaminationCheck(benchmarks, DedupConfig(), examples=5)
    try:
        kept = list(check.filter("sft", _planted(benchmarks)))
    finally:
        check.close()
    report = check.as_dict()
    sft = report["corpora"]["sft"]
    assert len(kept) == 4 and sft["records_checked"] == 4
    assert sft["records_contaminated"] == 3 and sft["records_dropped"] == 0
    cm_q = sft["benchmarks"]["cmexam"]["question"]
    assert (cm_q["contaminated"], cm_q["exact"], cm_q["near"], cm_q["items"]) == (2, 1, 1, 9)
    assert cm_q["share"] == pytest.approx(2 / 9, abs=1e-6)
    by_id = {e["id"]: e for e in cm_q["examples"]}
    assert set(by_id) == {"0", "7"}                      # item 1.. 6, 8 are clean
    assert by_id["0"]["match"] == "exact"
    assert by_id["0"]["training_snippet"].startswith(benchmarks["cmexam"][0]["question"][:20])
    assert by_id["7"]["match"] == "near" and 0.3 < by_id["7"]["similarity"] < 1
    # question + answer: item 0's training answer differs (no match); item 7's long question outweighs its
    # short answer, so the edited copy with another answer is still a near duplicate under this key
    cm_qa = sft["benchmarks"]["cmexam"]["question_answer"]
    assert [(e["id"], e["match"]) for e in cm_qa["examples"]] == [("7", "near")] and cm_qa["contaminated"] == 1
    hu = sft["benchmarks"]["huatuo26m"]
    assert hu["question"]["contaminated"] == 1 and hu["question_answer"]["contaminated"] == 1
    assert hu["question_answer"]["share"] == pytest.approx(1 / 20)
    assert hu["question_answer"]["examples"][0]["id"] == benchmarks["huatuo26m"][0]["id"]


def test_drop_removes_exactly_the_contaminated_records(benchmarks):
    planted = _planted(benchmarks)
    check = ContaminationCheck(benchmarks, DedupConfig(), drop=True)
    try:
        kept = list(check.filter("sft", planted))
    finally:
        check.close()
    assert kept == planted[3:]
    assert check.as_dict()["corpora"]["sft"]["records_dropped"] == 3


def test_keys_and_training_units():
    exam = {"question": "问题", "options": {"A": "甲", "B": "乙", "C": "丙"}, "answer": "AC"}
    assert item_texts(exam, "question") == ["问题", "问：问题", mcq_prompt(exam)]
    assert item_texts(exam, "question_answer") == ["问题\n甲；丙", "问：问题\n答：甲；丙", mcq_to_text(exam)]
    assert item_texts({"question": "q", "answer": "a"}, "question_answer") == ["q\na", "问：q\n答：a"]
    conv = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"},
                         {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"},
                         {"role": "assistant", "content": "a2"}]}
    assert training_units(conv, "sft") == ["s\nu1\na1\nu2\na2", "u1", "u1\na1", "u2", "u2\na2"]
    pair = {"prompt": "p", "chosen": "c", "rejected": "r"}
    assert training_units(pair, "dpo") == ["p\nc\nr", "p", "p\nc"]


# ----------------------------------------------------------------------------- through the data stage
def _profile(shared_data, tmp_path, benchmarks, drop: bool):
    """The paper profile's source path on small files: a CPT file that holds one CMExam test question, and
    the CMExam test file itself as a training source (routed into CPT and SFT by the stage's conversions)."""
    question = benchmarks["cmexam"][5]["question"]
    cpt = tmp_path / "cpt.txt"
    cpt.write_text(f"{question}\n高血压是一种常见的慢性病，主要表现为头晕、头痛，需要长期规律服药。\n", encoding="utf-8")
    sft = tmp_path / "sft.jsonl"
    sft.write_text(json.dumps({"conversations": [{"from": "input", "value": "发热怎么办？"},
                                                 {"from": "output", "value": "多喝水，必要时就医。"}]},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    spec = [{"name": "chimed_cpt", "loader": "chimed_cpt_txt", "path": str(cpt), "stage": "cpt"},
            {"name": "chimed_sft", "loader": "chimed_sft_jsonl", "path": str(sft), "stage": "sft"},
            {"name": "chimed_dpo", "loader": "chimed_dpo_json", "stage": "dpo",
             "path": str(shared_data / "chimed_format" / "dpo.json")},
            {"name": "cmexam_leak", "loader": "cmexam_csv", "stage": "all",
             "path": str(shared_data / "cmexam" / "test_10_official.csv")}]
    bench = {"cmexam": str(shared_data / "cmexam" / "test_10_official.csv"),
             "pubmedqa": str(tmp_path / "not_cloned" / "ori_pqal.json")}
    return load_config("paper", {"data.sources": spec, "data.benchmarks": bench,
                                 "data.decontamination.drop": drop})


@pytest.mark.parametrize("drop", [False, True])
def test_the_data_stage_reports_and_optionally_drops(shared_data, sandbox, tmp_path, benchmarks, drop):
    with pytest.warns(UserWarning, match="benchmark 'pubmedqa' not checked"):
        stats = run_data_stage(_profile(shared_data, tmp_path, benchmarks, drop), progress=False).stats
    report = stats["decontamination"]
    cpt = report["corpora"]["cpt"]
    assert report["drop"] is drop and report["benchmarks"] == {"cmexam": 9}
    assert "pubmedqa" in report["not_checked"] and "FileNotFoundError" in report["not_checked"]["pubmedqa"]
    # every leaked item is found exactly in the layouts the stage wrote: CPT text, SFT prompt and pair
    cpt_cm, sft_cm = cpt["benchmarks"]["cmexam"], report["corpora"]["sft"]["benchmarks"]["cmexam"]
    assert (cpt_cm["question_answer"]["exact"], cpt_cm["question_answer"]["share"]) == (9, 1.0)
    assert sft_cm["question"]["exact"] == sft_cm["question_answer"]["exact"] == 9
    # under the question key CPT matches only the planted line: a whole exam item as one CPT text holds the
    # question but is no duplicate of it (containment is what this check does not find)
    assert cpt_cm["question"]["contaminated"] == cpt_cm["question"]["exact"] == 1
    assert [e["id"] for e in cpt_cm["question"]["examples"]] == ["5"]
    # the planted line + 9 leaked items in CPT; 9 in SFT (its own record is clean); DPO none
    assert cpt["records_contaminated"] == 10 and cpt["records_dropped"] == (10 if drop else 0)
    sft = report["corpora"]["sft"]
    assert sft["records_contaminated"] == 9 and sft["records_dropped"] == (9 if drop else 0)
    assert report["corpora"]["dpo"]["records_contaminated"] == 0
    for corpus in ("cpt", "sft", "dpo"):
        tally = report["corpora"][corpus]
        assert tally["records_checked"] == stats["dedup"][corpus]["kept"]
        assert stats["corpora"][corpus]["records"] == tally["records_checked"] - tally["records_dropped"]

    # the table (md/csv/tex), in the report's order right after the eval sets
    write_data_tables(stats, "paper")
    tables = sandbox / "results" / "paper" / "tables"
    assert all((tables / f"decontamination.{ext}").exists() for ext in ("md", "csv", "tex"))
    frame = pd.read_csv(tables / "decontamination.csv")
    row = frame[(frame.corpus == "cpt") & (frame.benchmark == "cmexam")].iloc[0]
    assert row.qa_contaminated == 9 and row.qa_share_pct == 100.0 and row.records_contaminated == 10
    assert frame[frame.benchmark == "pubmedqa"].note.str.startswith("not checked").all()
    from qilin_lib.report import _ordered_tables

    order = [p.stem for p in _ordered_tables("paper")]
    assert order.index("decontamination") == order.index("eval_sets") + 1
    assert "decontamination_examples" in order


def test_the_data_card_matches_data_stats(sandbox):
    run_data_stage(load_config("tiny"), progress=False)
    results = sandbox / "results" / "tiny"
    stats = json.loads((results / "data_stats.json").read_text("utf-8"))
    card = (results / CARD_FILE).read_text("utf-8")
    for heading in ("# Data card: profile `tiny`", "## Corpora", "### ChiMed-CPT", "### ChiMed-SFT", "### ChiMed-DPO",
                    "## Deduplication settings", "## Benchmark contamination"):
        assert heading in card
    for corpus in ("cpt", "sft", "dpo"):
        dedup, built = stats["dedup"][corpus], stats["corpora"][corpus]
        assert f"records before deduplication: {dedup['total']:,}" in card
        assert f"records after deduplication: {dedup['kept']:,}" in card
        assert f"records written: {built['records']:,}; characters: {built['chars']:,}" in card
    for name, n in stats["decontamination"]["benchmarks"].items():
        assert f"| {name} " in card and str(n) in card
    assert "CC0 (qilin_lib/data/kb/tiny_kb.json" in card


def test_licences_come_from_the_mapping_or_are_unknown():
    assert licence("ceval") == "CC BY-NC-SA 4.0" and licence("pubmedqa") == "MIT"
    assert licence("chimed_cpt", "hf://datasets/williamliu/ChiMed/cpt.txt").startswith("unknown")
    assert licence("toyhom", "/x/y.csv") == "unknown"


def test_dropping_is_off_in_every_shipped_profile():
    """The paper trained on ChiMed as released: no profile leaves contaminated records out by default."""
    from importlib import resources

    names = [p.name.removesuffix(".yaml") for p in resources.files("qilin_lib.profiles").iterdir()
             if p.name.endswith(".yaml")]
    assert "tiny" in names and "paper" in names
    assert not any(load_config(name).data.decontamination.drop for name in names)
