"""results/paper/reference.json: loads, validates, every cell sourced, and no number absent from DESIGN.md."""

import json
import math
import re
from pathlib import Path

import pytest

from qilin_lib.evaluation.reference import load_reference, reference_table
from qilin_lib.paths import repo_root

DESIGN = Path(repo_root()).parent / "shared" / "DESIGN.md"


def test_reference_loads_and_every_entry_is_sourced():
    entries = load_reference()
    assert entries
    for entry in entries:
        assert entry["source"].strip()
        assert isinstance(entry["value"], float)


def _write(tmp_path, entries):
    path = tmp_path / "reference.json"
    path.write_text(json.dumps({"description": "test", "entries": entries}), encoding="utf-8")
    return path


GOOD = {"benchmark": "cmexam", "model": "M", "metric": "accuracy", "value": 1.0, "source": "S"}


@pytest.mark.parametrize("bad", [
    {k: v for k, v in GOOD.items() if k != "source"},
    {**GOOD, "source": "  "},
    {**GOOD, "value": "61.6"},
    {**GOOD, "value": None},
    {**GOOD, "value": True},
    {**GOOD, "model": ""},
    "not an object",
])
def test_malformed_entry_raises_naming_its_index(tmp_path, bad):
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(ValueError, match=r"entry 1\b"):
        load_reference(path)


def test_missing_entries_list_raises(tmp_path):
    path = tmp_path / "reference.json"
    path.write_text(json.dumps([GOOD]), encoding="utf-8")
    with pytest.raises(ValueError, match="entries"):
        load_reference(path)


def test_cmexam_table():
    table = reference_table("cmexam", ["accuracy", "weighted_f1"])
    assert list(table.columns) == ["accuracy", "weighted_f1", "source"]
    assert table.index.name == "model"
    assert table.loc["GPT-4", "accuracy"] == 61.6 and table.loc["GPT-4", "weighted_f1"] == 61.7
    assert table.loc["Baichuan-7B", "accuracy"] == 33.5 and math.isnan(table.loc["Baichuan-7B", "weighted_f1"])
    assert math.isnan(table.loc["human", "weighted_f1"])
    assert "v2 only" in table.loc["Qilin-Med-RAG", "source"]
    assert "Qilin-Med-7B-DPO" not in table.index   # published on Huatuo-26M only


def test_table_rows_only_for_requested_metrics_and_joined_sources():
    table = reference_table("huatuo26m", ["bleu_1", "rouge_1"])
    assert list(table.index) == ["Qilin-Med-7B-SFT", "Qilin-Med-7B-DPO", "T5 (fine-tuned)", "GPT2 (fine-tuned)"]
    assert table.loc["Qilin-Med-7B-DPO", "bleu_1"] == 16.66 and table.loc["Qilin-Med-7B-DPO", "rouge_1"] == 27.44
    assert table.loc["T5 (fine-tuned)", "source"] == "Huatuo-26M repo FreedomIntelligence/Huatuo-26M, img/NLG.png"
    assert reference_table("pubmedqa", ["accuracy"]).loc["AntGLM-Med 10B", "accuracy"] == 80.6
    assert reference_table("pubmedqa", ["weighted_f1"]).empty


def _design_section_5() -> str:
    if not DESIGN.is_file():
        pytest.skip(f"{DESIGN} (the design spec that reference.json is copied from) is absent on this machine")
    section = re.search(r"^## 5\..*?(?=^## |\Z)", DESIGN.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
    assert section, "DESIGN.md has no section 5"
    return section.group(0)


def test_every_number_comes_from_design_section_5():
    # Compare as numbers, token by token: "14.00" in the text is 14.0 in JSON, and a substring test would
    # wrongly accept 3.1 because of "23.15".
    published = {float(tok) for tok in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?!\w|\.\d)", _design_section_5())}
    missing = [(e["model"], e["metric"], e["value"]) for e in load_reference() if e["value"] not in published]
    assert not missing, f"numbers not in DESIGN.md section 5: {missing}"


def test_every_decimal_of_design_section_5_is_in_the_file():
    # decimals not inside a name ("GPT-3.5-turbo"): each is a published score and must have an entry
    decimals = {float(tok) for tok in re.findall(r"(?<![\w.-])\d+\.\d+(?!\w|\.\d)", _design_section_5())}
    assert decimals - {e["value"] for e in load_reference()} == set()
