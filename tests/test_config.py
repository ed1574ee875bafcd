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
    assert cfg.model.name_or_path == "baichuan-inc/Baichuan-7B" and cfg.model.convert == "baichuan"
    assert not cfg.model.trust_remote_code       # converted to a native Llama: no hub code runs
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
    assert cfg.data.benchmarks == {"cmexam": {"path": "x.csv"}}      # a plain path is the spec's `path`


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


@pytest.mark.parametrize("override, message", [
    ({"evaluation.benchmarks": ["cmexma"]}, "evaluation.benchmarks[0]: unknown benchmark 'cmexma'; did you mean 'cmexam'?"),
    ({"evaluation.modes": ["clozee"]}, "evaluation.modes[0]: unknown value 'clozee'; did you mean 'cloze'?"),
    ({"evaluation.voc_models": ["dpoo"]}, "evaluation.voc_models[0]: unknown value 'dpoo'; did you mean 'dpo'?"),
    ({"evaluation.adapt_benchmark": "pubmedq"}, "unknown benchmark 'pubmedq'; did you mean 'pubmedqa'?"),
    ({"data.sources": [{"name": "x", "laoder": "chimed_cpt_txt", "path": "a"}]},
     "unknown config key 'data.sources[0].laoder'; did you mean 'data.sources[0].loader'?"),
    ({"data.sources": [{"name": "x", "loader": "chimed_cpt_tx", "path": "a"}]},
     "data.sources[0].loader: unknown loader 'chimed_cpt_tx'; did you mean 'chimed_cpt_txt'?"),
    ({"data.sources": [{"name": "x", "loader": "chimed_cpt_txt", "path": "a", "subset": "dialog"}]},
     "unknown CPT subset 'dialog'; did you mean 'dialogue'?"),
    ({"data.benchmarks": {"cmexma": "x.csv"}}, "data.benchmarks.cmexma: unknown benchmark 'cmexma'"),
    ({"data.benchmarks": {"pubmedqa": {"path": "x", "tset_ids": "y"}}},
     "unknown config key 'data.benchmarks.pubmedqa.tset_ids'; did you mean 'data.benchmarks.pubmedqa.test_ids'?"),
    ({"dcpt.lr_scheduler": "cosin"}, "unknown lr_scheduler 'cosin'; did you mean 'cosine'?"),
    ({"sft.deepspeed": "zero3"}, "unknown DeepSpeed config 'zero3'"),
    ({"model.dtype": "bf16"}, "model.dtype: unknown value 'bf16'; did you mean 'bfloat16'?"),
])
def test_nested_names_are_checked_against_what_exists(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", override)
    assert message in str(err.value)


@pytest.mark.parametrize("override, message", [
    ({"dcpt.block_size": 0}, "dcpt.block_size: Input should be greater than or equal to 2"),
    ({"dcpt.block_size": -8}, "dcpt.block_size"),
    ({"sft.per_device_batch_size": 0}, "sft.per_device_batch_size"),
    ({"dpo.epochs": 0}, "dpo.epochs: Input should be greater than 0"),
    ({"dcpt.max_steps": 0}, "max_steps 0 would train nothing"),
    ({"sft.lora.dropout": 1.0}, "sft.lora.dropout"),
    ({"data.dedup.lsh_threshold": 0}, "data.dedup.lsh_threshold"),
    ({"evaluation.batch_size": -1}, "evaluation.batch_size"),
])
def test_values_out_of_range_fail_before_any_work(override, message):
    with pytest.raises(ConfigError, match="profile 'tiny'") as err:
        load_config("tiny", override)
    assert message in str(err.value)


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "/abs", ""])
def test_a_profile_name_cannot_leave_its_directories(name):
    with pytest.raises(ConfigError, match="profile name"):
        load_config("tiny", {"name": name})


def test_a_value_is_not_a_section():
    with pytest.raises(ConfigError, match="'seed' is a value, not a section"):
        load_config("tiny", {"seed.x": 1})


def test_scheduler_names_read_from_source_equal_transformers_enum():
    from transformers import SchedulerType

    from qilin_lib.config import _schedulers

    assert _schedulers() == [s.value for s in SchedulerType]


def test_loading_a_config_imports_neither_torch_nor_the_hub_client():
    """`qilin` sets HF_HUB_OFFLINE from the profile; huggingface_hub reads it once, at import."""
    import subprocess
    import sys

    code = ("import sys; from qilin_lib.config import load_config; load_config('paper'); "
            "print(sorted(m for m in ('torch', 'huggingface_hub', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_profile_extends_another_and_lists_only_what_differs(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("extends: paper\nname: child\nsft: {max_steps: 3}\nmodel: {max_probe_perplexity: 0.0}\n")
    cfg, paper = load_config(str(child)), load_config("paper")
    assert cfg.name == "child" and cfg.sft.max_steps == 3
    assert cfg.sft.learning_rate == paper.sft.learning_rate and cfg.sft.lora == paper.sft.lora  # merged, not replaced
    assert cfg.model.chat_template == "baichuan-chat" and cfg.model.max_probe_perplexity == 0.0
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"extends: {loop}\n")
    with pytest.raises(ConfigError, match="without cycles"):
        load_config(str(loop))


def test_path_placeholders_expand_to_this_machines_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("QILIN_SHARED", str(tmp_path / "shared"))
    monkeypatch.setenv("QILIN_ARTIFACTS", str(tmp_path / "artifacts"))
    cfg = load_config("paper-smoke", {"data.benchmarks.ceval": "ceval/ceval-exam"})
    assert cfg.data.sources[0]["path"] == str(tmp_path / "shared" / "data" / "chimed_format" / "cpt.txt")
    assert cfg.model.name_or_path == str(tmp_path / "artifacts" / "paper-smoke" / "inputs" / "baichuan-7b-random")
    assert cfg.data.benchmarks["ceval"] == {"path": "ceval/ceval-exam"}  # a hub id is not a placeholder path
