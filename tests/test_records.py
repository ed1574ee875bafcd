"""Uniform record constructors and the shared loader plumbing (errors, decoding, JSON lines)."""

import pytest

from qilin_lib.data import records
from qilin_lib.data.errors import DataFormatError, RecordGuard
from qilin_lib.data.io import read_text


def test_mcq_normalises_multi_letter_answers_and_keeps_real_letters():
    item = records.mcq("1", " 问题 ", {"B": "乙", "C": "丙", "E": "戊"}, "eb", source="t")
    assert item["answer"] == "BE" and list(item["options"]) == ["B", "C", "E"]
    with pytest.raises(ValueError, match="not a set of option letters"):
        records.mcq("1", "q", {"A": "a", "B": "b"}, "C", source="t")


def test_sft_requires_a_final_assistant_turn():
    with pytest.raises(ValueError, match="last message"):
        records.sft([{"role": "user", "content": "hi"}], source="t")
    conv = records.conversation_from_pairs([("问", "答"), ("再问", "再答")], source="t", system="sys")
    assert [m["role"] for m in conv["messages"]] == ["system", "user", "assistant", "user", "assistant"]


def test_dpo_rejects_identical_responses():
    with pytest.raises(ValueError, match="identical"):
        records.dpo("p", "same", "same", source="t")


def test_guard_raises_with_file_and_record_or_counts_skips(tmp_path):
    guard = RecordGuard(tmp_path / "f.json", "demo", errors="raise")
    with pytest.raises(DataFormatError, match=r"f\.json: record line 3: missing field 'text'"):
        with guard.record("line 3"):
            records.cpt({}["text"], "demo")
    guard = RecordGuard(tmp_path / "f.json", "demo", errors="skip")
    out = []
    for n, rec in enumerate([{"text": "a"}, {}, {"text": "b"}], start=1):
        with guard.record(f"line {n}"):
            out.append(records.cpt(rec["text"], "demo"))
    result = guard.finish(out)
    assert len(result) == 2 and result.stats.skipped == 1 and result.stats.loaded == 2
    assert result.stats.reasons == {"missing field 'text'": 1}


def test_wrong_encoding_names_the_encoding_to_declare(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("高血压患者能吃党参吗".encode("gbk"))
    with pytest.raises(DataFormatError, match=r"gbk\.csv: not valid utf-8.*declare encoding='gbk'"):
        read_text(path)
    assert read_text(path, encoding="gbk") == "高血压患者能吃党参吗"
