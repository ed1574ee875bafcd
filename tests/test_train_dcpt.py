"""qilin_lib.train.dcpt on a 2-layer, hidden-64 Llama and a few hundred short documents (seconds each).

One uninterrupted run is shared by several tests; an interrupted + resumed run must end with its weights.
Every test writes under its own QILIN_ROOT (results/, figures/, artifacts/), never into the checkout.
"""

import json
import math
import random

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, TrainerCallback

from faults import PoisonWeights
from qilin_lib.config import ModelConfig, load_config
from qilin_lib.modeling import build_tiny_model, build_tiny_tokenizer
from qilin_lib.train.common import last_complete_checkpoint, stage_artifact, work_dir
from qilin_lib.train.dcpt import corpus_hash, model_hash, perplexity, run_dcpt

SMALL = {"model.vocab_size": 400, "model.hidden_size": 64, "model.num_layers": 2, "model.num_heads": 2,
         "model.intermediate_size": 128, "model.max_position_embeddings": 128}
STAGE = {"dcpt.block_size": 32, "dcpt.per_device_batch_size": 4, "dcpt.max_steps": 16, "dcpt.save_steps": 4,
         "dcpt.warmup_steps": 2, "dcpt.logging_steps": 1, "dcpt.learning_rate": 3e-3}
INTERRUPT_AT = 10  # after checkpoint-8 was written; checkpoint-12 was not


def make_texts(n=240, seed=0):
    rng = random.Random(seed)
    diseases = ["高血压", "糖尿病", "肺炎", "胃炎", "哮喘", "偏头痛", "贫血", "痛风"]
    facts = {d: (rng.choice(["头痛", "头晕", "咳嗽", "发热", "腹痛", "气短"]),
                 rng.choice(["内科", "外科", "儿科", "神经科"])) for d in diseases}
    forms = ["{d}的常见症状是{s}，应去{k}就诊。", "问：{d}有什么表现？答：常见{s}。", "得了{d}要挂{k}，常有{s}。"]
    return [rng.choice(forms).format(d=d, s=facts[d][0], k=facts[d][1])
            for d in (rng.choice(diseases) for _ in range(n))]


def config(**extra):
    return load_config("tiny", {**SMALL, **STAGE, **extra})


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A base model dir + corpus, built once; each test gets its own QILIN_ROOT via `root`."""
    base = tmp_path_factory.mktemp("base")
    texts = make_texts()
    tok = build_tiny_tokenizer(texts, vocab_size=400, model_max_length=128)
    tok.save_pretrained(base)
    build_tiny_model(ModelConfig(**{k.split(".")[1]: v for k, v in SMALL.items()}), tok, seed=0).save_pretrained(base)
    return {"base": base, "texts": texts}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small gain nothing from a second thread, and on a shared 2-core machine OpenMP's
    spinning threads make every step many times slower whenever another process is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _use_root(mp, path):
    mp.setenv("QILIN_ROOT", str(path))
    mp.delenv("QILIN_ARTIFACTS", raising=False)


@pytest.fixture(scope="module")
def full_run(env, tmp_path_factory):
    """The uninterrupted reference run."""
    root = tmp_path_factory.mktemp("full")
    with pytest.MonkeyPatch.context() as mp:
        _use_root(mp, root)
        run = run_dcpt(config(), corpus=env["texts"], base_model=env["base"], progress=False)
    return {"run": run, "root": root}


def weights(path):
    return load_file(str(path / "model.safetensors"))


# ---------------------------------------------------------------------------------------- training
def test_parameters_change_and_loss_falls(env, full_run):
    run = full_run["run"]
    assert not run.reused and run.metrics["global_steps"] == 16
    before, after = weights(env["base"]), weights(run.path)
    assert before.keys() == after.keys()
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"full-parameter DCPT left {unchanged} untouched"
    losses = [loss for _, loss in run.metrics["loss_curve"]]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5
    m = run.metrics
    assert m["trainable_parameters"] == m["total_parameters"] > 0 and not m["lora"]
    assert m["packing_efficiency"] >= 0.99
    assert m["tokens_trained"] == 16 * 4 * 32 and m["tokens_per_second"] > 0
    assert m["data_hash"] == corpus_hash(config(), env["texts"])
    assert m["base_model_hash"] == model_hash(env["base"])


def test_results_json_and_figure(full_run):
    root = full_run["root"]
    saved = json.loads((root / "results" / "tiny" / "train_dcpt.json").read_text("utf-8"))
    assert saved["final_loss"] == full_run["run"].metrics["final_loss"]
    assert saved["provenance"]["seed"] == 42
    assert (root / "figures" / "tiny" / "loss_dcpt.png").exists()


def test_artifact_is_a_plain_model_dir_and_work_dir_is_gone(env, full_run):
    path = full_run["run"].path
    assert (path / "manifest.json").exists() and (path / "tokenizer.json").exists()
    assert not (path / "adapter_config.json").exists()
    assert not work_dir(type("A", (), {"path": path})()).exists()
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.hidden_size == 64


def test_artifact_is_reused(env, full_run, monkeypatch):
    _use_root(monkeypatch, full_run["root"])
    again = run_dcpt(config(), corpus=env["texts"], base_model=env["base"], progress=False)
    assert again.reused and again.path == full_run["run"].path
    assert again.metrics["final_loss"] == full_run["run"].metrics["final_loss"]


def test_dcpt_lowers_perplexity_on_training_texts(env, full_run):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(full_run["run"].path)
    texts = env["texts"][:40]
    before = perplexity(AutoModelForCausalLM.from_pretrained(env["base"]), tok, texts)
    after = perplexity(AutoModelForCausalLM.from_pretrained(full_run["run"].path), tok, texts)
    assert after < before / 3
    # spans restrict the scored tokens: the whole text scores the same as no span, an empty span nothing
    model = AutoModelForCausalLM.from_pretrained(full_run["run"].path)
    whole = [(0, len(t)) for t in texts]
    assert perplexity(model, tok, texts, spans=whole) == pytest.approx(after, rel=1e-5)
    assert math.isnan(perplexity(model, tok, texts, spans=[(0, 0)] * len(texts)))
    first_half = perplexity(model, tok, texts, spans=[(0, len(t) // 2) for t in texts])
    assert first_half != pytest.approx(after, rel=1e-3)


# ------------------------------------------------------------------------------------------ resume
class Interrupt(Exception):
    pass


class StopAt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == INTERRUPT_AT:
            raise Interrupt(f"simulated crash at step {state.global_step}")


def test_interrupted_run_resumes_to_the_same_weights(env, full_run, tmp_path, monkeypatch):
    _use_root(monkeypatch, tmp_path)
    cfg = config()
    with pytest.raises(Interrupt):
        run_dcpt(cfg, corpus=env["texts"], base_model=env["base"], progress=False, callbacks=[StopAt()])
    art = stage_artifact(cfg, "dcpt", inputs={"data": corpus_hash(cfg, env["texts"]),
                                              "base": model_hash(env["base"])})
    assert not art.complete
    work = work_dir(art)
    assert last_complete_checkpoint(work) == str(work / "checkpoint-8")
    # a checkpoint interrupted mid-save (no trainer_state.json) must not be resumed from
    broken = work / "checkpoint-14"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"half-written")
    assert last_complete_checkpoint(work) == str(work / "checkpoint-8")

    resumed = run_dcpt(cfg, corpus=env["texts"], base_model=env["base"], progress=False)
    assert not resumed.reused and resumed.metrics["resumed_from"] == "checkpoint-8"
    assert resumed.metrics["global_steps"] == 16 and art.complete
    assert resumed.metrics["tokens_this_run"] == 8 * 4 * 32
    ref, got = weights(full_run["run"].path), weights(resumed.path)
    for k in ref:
        assert torch.allclose(ref[k], got[k], atol=1e-5), k
    assert resumed.metrics["final_loss"] == pytest.approx(full_run["run"].metrics["final_loss"], abs=1e-5)


def test_force_retrains_from_scratch(env, full_run, tmp_path, monkeypatch):
    _use_root(monkeypatch, tmp_path)
    cfg = config(**{"dcpt.max_steps": 4, "dcpt.save_steps": 100})
    first = run_dcpt(cfg, corpus=env["texts"], base_model=env["base"], progress=False)
    forced = run_dcpt(cfg, corpus=env["texts"], base_model=env["base"], progress=False, force=True)
    assert not forced.reused and forced.path == first.path
    assert forced.metrics["final_loss"] == first.metrics["final_loss"]  # seeded: same run, same loss


def test_non_finite_loss_stops_the_stage(env, tmp_path, monkeypatch):
    """A NaN loss raises, naming the stage and the step, before anything is marked complete (the Trainer
    would otherwise log the mean of earlier losses in its place and save NaN weights as the artifact)."""
    from qilin_lib.train.common import NonFiniteError

    _use_root(monkeypatch, tmp_path)
    cfg = config(**{"dcpt.max_steps": 4, "dcpt.save_steps": 100})
    with pytest.raises(NonFiniteError, match=r"^dcpt: non-finite loss=nan, grad_norm=nan at step 3"):
        run_dcpt(cfg, corpus=env["texts"], base_model=env["base"], progress=False, callbacks=[PoisonWeights()])
    art = stage_artifact(cfg, "dcpt", inputs={"data": corpus_hash(cfg, env["texts"]),
                                              "base": model_hash(env["base"])})
    assert not art.complete and not (tmp_path / "results" / "tiny" / "train_dcpt.json").exists()


# -------------------------------------------------------------------------------------------- LoRA
def test_lora_dcpt_saves_a_merged_plain_model(env, tmp_path, monkeypatch):
    _use_root(monkeypatch, tmp_path)
    cfg = config(**{"dcpt.max_steps": 6, "dcpt.save_steps": 100, "dcpt.lora.enabled": True,
                    "dcpt.lora.r": 4, "dcpt.lora.alpha": 8, "dcpt.learning_rate": 1e-2})
    run = run_dcpt(cfg, corpus=env["texts"], base_model=env["base"], progress=False)
    m = run.metrics
    assert m["lora"] and 0 < m["trainable_parameters"] < m["total_parameters"] / 2
    assert not (run.path / "adapter_config.json").exists()
    before, after = weights(env["base"]), weights(run.path)
    assert before.keys() == after.keys()                      # same names: no lora_A/lora_B left
    assert not any("lora" in k for k in after)
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    changed = [k for k in before if "proj" in k and not torch.equal(before[k], after[k])]
    assert changed                                            # the adapter was folded into the linears
    AutoModelForCausalLM.from_pretrained(run.path)            # loads as a plain model


# ----------------------------------------------------------------------- default inputs (tiny data)
SMALL_DATA = {"data.tiny": {"n_dcpt_diseases": 8, "n_sft_diseases": 4, "n_control_diseases": 4,
                            "restatements_per_fact": 4, "n_cmexam_items": 10, "n_ceval_items": 8, "n_qa_test": 8,
                            "n_probe_texts": 16, "n_sft_single": 20, "n_sft_mcq": 5, "n_sft_multi": 6,
                            "n_general_sft": 6, "n_dpo_train": 10, "n_dpo_heldout": 6}}


def test_default_inputs_come_from_the_data_stage(tmp_path, monkeypatch):
    """No corpus/base given: the data stage's ChiMed-CPT and the tiny base model built on its texts; the
    metrics then carry the probe perplexities and the exposures per taught fact."""
    from qilin_lib.data.stage import data_artifact, run_data_stage
    from qilin_lib.train.common import base_model_dir

    _use_root(monkeypatch, tmp_path)
    cfg = config(**SMALL_DATA, **{"dcpt.max_steps": 4, "dcpt.save_steps": 100})
    with pytest.raises(FileNotFoundError, match="notebook 01"):
        run_dcpt(cfg, progress=False)
    run_data_stage(cfg, progress=False)
    run = run_dcpt(cfg, progress=False)
    m = run.metrics
    assert m["data_hash"] == data_artifact(cfg).manifest["output_hash"]
    assert m["base_model"] == str(base_model_dir(cfg))
    probe = m["probe_perplexity"]
    assert set(probe) == {"before", "after"} and set(probe["after"]) == {"text", "facts"}
    assert set(probe["after"]["facts"]) == {"taught", "control"}
    assert all(v > 1 for scope in probe["after"].values() for v in scope.values())
    e = m["exposures_per_fact"]
    assert e["per_epoch"]["n_facts"] > 0 and e["per_epoch"]["min"] >= 1
    assert e["total_mean"] == pytest.approx(e["per_epoch"]["mean"] * m["epochs_trained"], abs=0.1)
