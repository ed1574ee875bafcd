"""The data stage end to end: tiny profile, the sources path on real samples, caching, notebook 01."""

import json

import pytest

from qilin_lib.config import load_config
from qilin_lib.data.errors import DataFormatError
from qilin_lib.data.stage import data_artifact, load_corpus, run_data_stage
from qilin_lib.data.tables import data_tables, write_data_tables


@pytest.fixture
def tiny_result(sandbox):
    return run_data_stage(load_config("tiny"), progress=False)


def test_tiny_stage_builds_all_three_corpora_and_eval_sets(tiny_result, sandbox):
    stats = tiny_result.stats
    assert not tiny_result.reused
    cpt_subsets = {row["group"][0] for row in stats["corpora"]["cpt"]["rows"]}
    assert cpt_subsets == {"qa", "text", "kg", "dialogue"}
    sft_groups = {tuple(row["group"][:2]) for row in stats["corpora"]["sft"]["rows"]}
    assert {("medical", "single"), ("medical", "multi"), ("general", "single")} <= sft_groups
    assert stats["corpora"]["dpo"]["records"] > 0
    assert set(stats["eval_sets"]) == {"cmexam", "cmexam_train", "ceval_dev", "ceval_val", "qa", "dpo_heldout", "probe_texts"}
    for corpus in ("cpt", "sft", "dpo"):
        report = stats["dedup"][corpus]
        assert report["kept"] == stats["corpora"][corpus]["records"]
    written = json.loads((sandbox / "results" / "tiny" / "data_stats.json").read_text("utf-8"))
    assert written["corpora"] == stats["corpora"] and "build_seconds" not in written


def test_corpora_load_back_as_datasets(tiny_result):
    cfg = load_config("tiny")
    cpt = load_corpus(cfg, "cpt")
    assert len(cpt) == tiny_result.stats["corpora"]["cpt"]["records"]
    assert {"text", "source", "subset"} <= set(cpt.column_names)
    sft = load_corpus(cfg, "sft")
    assert sft[0]["messages"][-1]["role"] == "assistant"
    cmexam = load_corpus(cfg, "eval/cmexam")
    assert len(cmexam) == tiny_result.stats["eval_sets"]["cmexam"]


def test_second_run_reuses_the_cache_and_force_rebuilds_identically(tiny_result):
    cfg = load_config("tiny")
    again = run_data_stage(cfg, progress=False)
    assert again.reused and again.path == tiny_result.path
    forced = run_data_stage(cfg, force=True, progress=False)
    assert not forced.reused
    assert forced.stats["content_hash"] == tiny_result.stats["content_hash"]  # seeded: same data
    # wall times live in the manifest only, so the hash downstream stages key on is reproducible too
    assert forced.stats["artifact"]["output_hash"] == tiny_result.stats["artifact"]["output_hash"]
    assert forced.stats["build_seconds"] > 0


def test_a_config_change_gets_its_own_artifact(sandbox):
    a = data_artifact(load_config("tiny"))
    b = data_artifact(load_config("tiny", {"data.tiny.n_qa_test": 7}))
    assert a.path != b.path


def test_tables_have_totals_and_write_three_formats(tiny_result, sandbox):
    tables = write_data_tables(tiny_result.stats, "tiny")
    cpt = tables["table1_chimed_cpt"]
    assert cpt.iloc[-1]["subset"] == "total"
    assert cpt.iloc[-1]["records"] == tiny_result.stats["corpora"]["cpt"]["records"]
    assert abs(cpt.iloc[:-1]["share_pct"].sum() - 100) < 0.1
    for ext in ("md", "csv", "tex"):
        assert (sandbox / "results" / "tiny" / "tables" / f"table1_chimed_cpt.{ext}").exists()


# ----------------------------------------------------------------------- the sources path, real files
def _sample_sources(root):
    return [
        {"name": "cmexam_val", "loader": "cmexam_csv", "path": str(root / "cmexam/val_from_xlsx.csv")},
        {"name": "huatuo26m", "loader": "huatuo26m_json", "path": str(root / "huatuo26m_test/huatuo26M_test_sample500.json"), "stage": "cpt"},
        {"name": "xywy_kg", "loader": "xywy_kg_json", "path": str(root / "medical_kg_xywy/medical_0.json")},
        {"name": "fever_textbook", "loader": "medicalgpt_pretrain_txt", "path": str(root / "medicalgpt_medical/pretrain/fever.txt")},
        {"name": "toyhom", "loader": "toyhom_csv", "path": str(root / "toyhom_dialogue/内科_sample3000.csv"), "subset": "dialogue", "stage": "all"},
        {"name": "cmtmedqa", "loader": "cmtmedqa_json", "path": str(root / "cmtmedqa_test/CMtMedQA_test_sample300.json")},
        {"name": "medicalgpt_sft", "loader": "medicalgpt_sft_jsonl", "path": str(root / "medicalgpt_medical/sft/medical_sft_1K_format.jsonl")},
        {"name": "medicalgpt_reward", "loader": "medicalgpt_reward_jsonl", "path": str(root / "medicalgpt_medical/reward/test.json")},
        {"name": "pubmedqa", "loader": "pubmedqa_json", "path": str(root / "pubmedqa/pqal_trainval.json")},
    ]


def test_sources_path_builds_chimed_from_real_samples(shared_data, sandbox):
    cfg = load_config("tiny", {"data.generator": "sources", "data.errors": "skip",
                               "data.max_records_per_source": 400, "data.sources": _sample_sources(shared_data)})
    stats = run_data_stage(cfg, progress=False).stats
    cpt_rows = {tuple(r["group"]): r["records"] for r in stats["corpora"]["cpt"]["rows"]}
    assert {s for s, _ in cpt_rows} == {"qa", "text", "kg", "dialogue"}
    assert cpt_rows[("kg", "xywy_kg")] > 300  # every disease entity became one passage
    sft_turns = {tuple(r["group"][1:]) for r in stats["corpora"]["sft"]["rows"]}
    assert ("multi", "cmtmedqa") in sft_turns and ("single", "toyhom") in sft_turns
    assert stats["eval_sets"] == {"pubmedqa": 400}
    by_source = {s["source"]: s for s in stats["sources"]}
    assert by_source["cmexam_val"]["loaded"] == 400
    assert stats["corpora"]["dpo"]["records"] <= 100
    frames = data_tables(stats)
    assert set(frames["data_sources"]["source"]) >= set(by_source)


def test_sources_path_names_the_bad_file_and_record(sandbox, tmp_path):
    bad = tmp_path / "reward.json"
    bad.write_text('{"question": "q", "response_chosen": "a", "response_rejected": "b"}\n{"question": \n',
                   encoding="utf-8")
    spec = [{"name": "reward", "loader": "medicalgpt_reward_jsonl", "path": str(bad)}]
    cfg = load_config("tiny", {"data.generator": "sources", "data.sources": spec})
    with pytest.raises(DataFormatError, match=r"reward\.json: record line 2"):
        run_data_stage(cfg, progress=False)
    assert not data_artifact(cfg).complete  # nothing half-written marked complete


# ---------------------------------------------------------------------------------- notebook 01
@pytest.mark.slow
def test_notebook_01_ran_headless_through_papermill(tiny_run):
    """Notebook 01 of the session's one tiny reproduction (conftest.tiny_run), not a run of its own."""
    executed = tiny_run.results / "notebooks" / "01_data.ipynb"
    assert executed.exists()
    cells = json.loads(executed.read_text("utf-8"))["cells"]
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in cells)    # papermill ran it
    assert (tiny_run.results / "tables" / "table1_chimed_cpt.md").exists()
    assert (tiny_run.root / "figures" / "tiny" / "data_composition.png").exists()


# ------------------------------------------------- the paper profile's hub path, with tiny stand-ins
def test_paper_profile_reads_chimed_through_the_hub_code_path(sandbox, tmp_path, monkeypatch):
    """`paper` names hf://datasets/williamliu/ChiMed/{cpt.txt,sft.jsonl,dpo.json}; the download call is
    real code, so we intercept only huggingface_hub.hf_hub_download and hand it stand-in files."""
    import huggingface_hub

    files = {
        "cpt.txt": "高血压是一种常见的慢性病，主要表现为头晕、头痛。\n\n糖尿病患者应定期监测血糖水平并控制饮食。\n",
        "sft.jsonl": '{"conversations": [{"from": "human", "value": "发热怎么办？"}, {"from": "gpt", "value": "多喝水，必要时就医。"}]}\n'
                     '{"conversations": [{"from": "human", "value": "咳嗽吃什么药？"}, {"from": "gpt", "value": "请先明确病因。"}]}\n',
        "dpo.json": '[{"instruction": "头痛怎么办？", "response_accepted": "注意休息，持续不缓解请就医。", "response_rejected": "不知道。"}]',
    }
    calls = []

    def fake_download(repo_id, filename, repo_type, revision=None):
        calls.append((repo_id, filename, repo_type))
        path = tmp_path / "hub" / filename
        path.parent.mkdir(exist_ok=True)
        path.write_text(files[filename], encoding="utf-8")
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    # One benchmark on the hub (the contamination check's download goes through the same stand-in; C-Eval's
    # datasets download would spend ~20 s in retries offline)
    huatuo = load_config("paper").data.benchmarks["huatuo26m"]
    stats = run_data_stage(load_config("paper", {"data.benchmarks": {"huatuo26m": huatuo}}), progress=False).stats
    # (the contamination check asks for the Huatuo-26M test file too: the stand-ins have none, it is reported)
    chimed_calls = sorted(call for call in calls if call[0] == "williamliu/ChiMed")
    assert chimed_calls == [("williamliu/ChiMed", f, "dataset") for f in ("cpt.txt", "dpo.json", "sft.jsonl")]
    assert "huatuo26m" in stats["decontamination"]["not_checked"]
    assert [stats["corpora"][c]["records"] for c in ("cpt", "sft", "dpo")] == [2, 2, 1]
    assert {s["source"] for s in stats["sources"]} == {"chimed_cpt", "chimed_sft", "chimed_dpo"}


def test_the_released_chimed_layout_loads_every_record(shared_data, sandbox):
    """ChiMed's sft.jsonl turns are `from: input` / `from: output` (the authors' reader); none may be skipped."""
    layout = shared_data / "chimed_format"
    spec = [{"name": "chimed_cpt", "loader": "chimed_cpt_txt", "path": str(layout / "cpt.txt"), "stage": "cpt"},
            {"name": "chimed_sft", "loader": "chimed_sft_jsonl", "path": str(layout / "sft.jsonl"), "stage": "sft"},
            {"name": "chimed_dpo", "loader": "chimed_dpo_json", "path": str(layout / "dpo.json"), "stage": "dpo"}]
    # the shared CMExam sample as the only benchmark (the profile's others are on the hub or not cloned)
    cfg = load_config("paper", {"data.sources": spec, "data.max_records_per_source": 300,
                                "data.benchmarks": {"cmexam": str(shared_data / "cmexam" / "test_10_official.csv")}})
    stats = run_data_stage(cfg, progress=False).stats
    by_source = {s["source"]: s for s in stats["sources"]}
    assert all(s["skipped"] == 0 and s["loaded"] > 0 for s in by_source.values()), by_source
    assert stats["corpora"]["sft"]["records"] > 0


def _reward_file(path, good: int, bad: int):
    lines = ['{"question": "q%d", "response_chosen": "a", "response_rejected": "b"}' % i for i in range(good)]
    path.write_text("\n".join(lines + ['{"question": "only a question"}'] * bad) + "\n", encoding="utf-8")
    return [{"name": "reward", "loader": "medicalgpt_reward_jsonl", "path": str(path)}]


@pytest.mark.parametrize("good, bad, allowed", [(0, 5, 0.01), (95, 5, 0.01), (95, 5, 0.04)])
def test_a_source_that_skips_too_much_stops_the_stage(sandbox, tmp_path, good, bad, allowed):
    from qilin_lib.data.stage import SourceRejected

    spec = _reward_file(tmp_path / "reward.jsonl", good, bad)
    cfg = load_config("tiny", {"data.generator": "sources", "data.errors": "skip", "data.sources": spec,
                               "data.max_skip_fraction": allowed})
    with pytest.raises(SourceRejected) as err:
        run_data_stage(cfg, progress=False)
    message = str(err.value)
    assert "'reward'" in message and f"{bad} skipped" in message and "line" in message   # names the first record
    assert ("loaded no records" in message) == (good == 0)
    assert not data_artifact(cfg).complete


def test_a_source_within_its_skip_allowance_is_kept_and_counted(sandbox, tmp_path):
    spec = _reward_file(tmp_path / "reward.jsonl", 98, 2)
    cfg = load_config("tiny", {"data.generator": "sources", "data.errors": "skip", "data.sources": spec,
                               "data.max_skip_fraction": 0.05})
    source = run_data_stage(cfg, progress=False).stats["sources"][0]
    assert (source["loaded"], source["skipped"], len(source["skip_examples"])) == (98, 2, 2)
