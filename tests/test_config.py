"""Every shipped profile loads; overrides apply; unknown or mistyped keys are errors that name the key."""

import pytest

from qilin_lib.config import PROFILES, ConfigError, ProfileConfig, load_config


@pytest.mark.parametrize("profile", PROFILES)
def test_every_shipped_profile_loads(profile):
    cfg = load_config(profile)
    assert isinstance(cfg, ProfileConfig)
    assert cfg.name == profile


def test_paper_profile_carries_the_papers_settings():
    cfg = load_config("paper")
    assert cfg.model.name_or_path == "baichuan-inc/Baichuan-7B" and cfg.model.trust_remote_code
    assert (cfg.dcpt.learning_rate, cfg.dcpt.epochs, cfg.dcpt.block_size) == (2e-4, 3.0, 1024)
    assert (cfg.sft.lora.r, cfg.sft.lora.alpha, cfg.sft.lora.dropout) == (8, 32, 0.05)
    assert (cfg.dpo.lora.alpha, cfg.dpo.beta, cfg.dpo.learning_rate) == (16, 0.1, 2e-5)
    assert cfg.sft.deepspeed == "zero2" and cfg.hardware.num_gpus == 8
    assert {s["loader"] for s in cfg.data.sources} == {"chimed_cpt_txt", "chimed_sft_jsonl", "chimed_dpo_json"}


def test_dotted_and_nested_overrides_apply():
    cfg = load_config("tiny", {"seed": 7, "dcpt.learning_rate": 1e-3, "data": {"tiny": {"n_qa_test": 3}}})
    assert (cfg.seed, cfg.dcpt.learning_rate, cfg.data.tiny.n_qa_test) == (7, 1e-3, 3)
    assert load_config("tiny").seed != 7  # overrides never leak into the next load


def test_int_is_accepted_for_float_fields():
    assert load_config("tiny", {"dcpt.epochs": 2}).dcpt.epochs == 2.0


def test_dict_valued_field_takes_a_dict_override():
    cfg = load_config("tiny", {"data.benchmarks": {"cmexam": "x.csv"}})
    assert cfg.data.benchmarks == {"cmexam": "x.csv"}


@pytest.mark.parametrize("key, expected", [
    ("dcpt.learnig_rate", "'dcpt.learning_rate'"),
    ("sed", "'seed'"),
    ("data.dedup.nump_perm", "'data.dedup.num_perm'"),
])
def test_mistyped_key_is_named_with_a_suggestion(key, expected):
    with pytest.raises(ConfigError, match="unknown config key") as err:
        load_config("tiny", {key: 1})
    assert key in str(err.value) and expected in str(err.value)


def test_wrong_type_is_an_error():
    with pytest.raises(ConfigError, match="dcpt.epochs: expected float"):
        load_config("tiny", {"dcpt.epochs": "three"})
    with pytest.raises(ConfigError, match="expected int, got bool"):
        load_config("tiny", {"seed": True})


def test_unknown_key_in_a_yaml_profile_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndcpt:\n  lr: 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'dcpt.lr'"):
        load_config(str(bad))


def test_unknown_profile_is_an_error():
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        load_config("huge")
