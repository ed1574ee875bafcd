"""Profiles that need nothing from the hub run with it switched off; telemetry is always off."""

from qilin_lib.config import load_config
from qilin_lib.hub import needs_hub, set_hub_environment


def test_tiny_runs_offline_and_paper_keeps_the_hub():
    tiny, paper = {}, {}
    set_hub_environment("tiny", tiny)
    set_hub_environment("paper", paper)
    assert tiny == {"HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    assert paper == {"HF_HUB_DISABLE_TELEMETRY": "1"}


def test_a_variable_the_user_set_is_kept():
    env = {"HF_HUB_OFFLINE": "0"}
    set_hub_environment("tiny", env)
    assert env["HF_HUB_OFFLINE"] == "0"


def test_local_model_and_files_need_no_hub(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "cmexam.csv").write_text("x")
    local = {"model.name_or_path": str(tmp_path / "model"), "model.trust_remote_code": False, "data.sources": [],
             "data.benchmarks": {"cmexam": str(tmp_path / "cmexam.csv")}}
    assert not needs_hub(load_config("paper", local))
    assert needs_hub(load_config("paper", local | {"data.benchmarks": {"ceval": "ceval/ceval-exam"}}))
    assert needs_hub(load_config("paper", local | {"model.name_or_path": "baichuan-inc/Baichuan-7B"}))
