"""qilin_lib.train.dpo: pair tokenisation (same template and length rule as SFT), the LoRA DPO stage with the
merged SFT model as reference (adapter disabled), its metrics, resume, and the saved adapter / merged model.
The "SFT model" here is a 2-layer, hidden-64 model built in the test."""

import json
import random

import pytest
import torch
from datasets import Dataset

from faults import InterruptAfterSave, PoisonWeights, assert_same_adapter
from qilin_lib.config import load_config
from qilin_lib.modeling import build_tiny_model, build_tiny_tokenizer, load_model_and_tokenizer
from qilin_lib.train.common import StageRun
from qilin_lib.train.dpo import preference_metrics, run_dpo, tokenize_dpo_dataset, tokenize_preference
from qilin_lib.train.sft import tokenize_conversation

DISEASES = ["高血压", "糖尿病", "肺炎", "胃炎", "哮喘", "偏头痛"]
SYMPTOMS = ["头痛", "口渴", "咳嗽", "腹痛", "气短", "恶心"]
OVERRIDES = {
    "model.vocab_size": 400, "model.hidden_size": 64, "model.num_layers": 2, "model.num_heads": 4,
    "model.intermediate_size": 128, "model.max_position_embeddings": 256,
    "dpo.max_steps": 6, "dpo.per_device_batch_size": 4, "dpo.save_steps": 3, "dpo.logging_steps": 1,
    "dpo.learning_rate": 1e-2, "dpo.warmup_ratio": 0.0, "dpo.lr_scheduler": "constant",
}


def pairs(n, seed, wording="{d}有什么症状？"):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i, j = rng.randrange(6), rng.randrange(5)
        wrong = SYMPTOMS[(i + 1 + j) % 6]
        d = DISEASES[i]
        out.append({"prompt": wording.format(d=d), "chosen": f"{d}常见{SYMPTOMS[i]}。",
                    "rejected": f"{d}常见{wrong}。" if rng.random() < 0.7 else "不清楚。", "source": "test"})
    return out


@pytest.fixture(scope="module")
def cfg():
    return load_config("tiny", OVERRIDES)


@pytest.fixture(scope="module")
def tokenizer():
    texts = [r[k] for r in pairs(200, 0) + pairs(50, 1, "{d}会怎样？") for k in ("prompt", "chosen", "rejected")]
    return build_tiny_tokenizer(texts, vocab_size=400, model_max_length=256)


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, tokenizer, cfg):
    path = tmp_path_factory.mktemp("sft_model")
    tokenizer.save_pretrained(path)
    build_tiny_model(cfg.model, tokenizer, seed=0).save_pretrained(path)
    return StageRun(stage="sft", path=path, metrics={}, reused=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cfg, sft_run):
    root = tmp_path_factory.mktemp("dpo_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QILIN_ROOT", str(root))
        mp.setenv("QILIN_ARTIFACTS", str(root / "artifacts"))
        run = run_dpo(cfg, dataset=Dataset.from_list(pairs(32, 0)), sft_run=sft_run, progress=False,
                      heldout=Dataset.from_list(pairs(12, 1, "{d}会怎样？")))
        yield run, root


# ------------------------------------------------------------------------------------ tokenisation
def test_pairs_use_the_sft_template_and_limits(tokenizer):
    rec = pairs(1, 3)[0]
    out = tokenize_preference(tokenizer, rec["prompt"], rec["chosen"], rec["rejected"], 256, 256)
    conv = [{"role": "user", "content": rec["prompt"]}, {"role": "assistant", "content": rec["chosen"]}]
    sft = tokenize_conversation(tokenizer, conv, 256, 256)
    assert out["prompt_ids"] + out["chosen_ids"] == sft["input_ids"]
    assert sft["labels"][len(out["prompt_ids"]):] == out["chosen_ids"]
    assert out["prompt_ids"] == tokenizer.apply_chat_template(conv[:1], tokenize=True, return_dict=True,
                                                              add_generation_prompt=True)["input_ids"]
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    assert out["rejected_ids"][-1] == end and tokenizer.decode(out["rejected_ids"][:-1]) == rec["rejected"]
    cut = tokenize_preference(tokenizer, "头痛" * 40, "咳嗽" * 40, "腹痛" * 40, 12, 6)
    assert len(cut["prompt_ids"]) == 12 and cut["prompt_ids"][-2:] == out["prompt_ids"][-2:]  # answer header kept
    assert len(cut["chosen_ids"]) == len(cut["rejected_ids"]) == 6 and cut["chosen_ids"][-1] == end


# ----------------------------------------------------------------------------------------- stage
def test_stage_results(trained):
    run, root = trained
    m = run.metrics
    saved = json.loads((root / "results" / "tiny" / "train_dpo.json").read_text())
    assert saved["global_steps"] == 6 and saved["beta"] == 0.1
    assert len(m["rewards/margins"]) == 6 and len(m["rewards/accuracies"]) == 6
    assert m["heldout"]["before"]["pairs"] == 12 and m["heldout"]["after"]["pairs"] == 12
    assert m["tokens_per_second"] > 0 and 0 < m["trainable_params"] < m["total_params"]
    assert set(m["hashes"]) == {"data", "sft_model"}
    # before DPO the policy is the reference: implicit rewards are exactly 0
    assert m["train_pairs_eval"]["before"]["reward_margin"] == 0.0
    # DPO moved the policy towards the chosen answers on the training pairs
    after = m["train_pairs_eval"]["after"]
    assert after["reward_accuracy"] > 0.5 and after["reward_margin"] > 0
    assert m["final_loss"] < m["first_loss"]


def test_reference_is_the_sft_model_and_outputs_agree(trained, cfg, sft_run, tokenizer):
    from peft import PeftModel

    run, _ = trained
    data = tokenize_dpo_dataset(tokenizer, Dataset.from_list(pairs(12, 1, "{d}会怎样？")), 256, 256)
    sft_model, _ = load_model_and_tokenizer(cfg.model, str(sft_run.path))
    before = preference_metrics(sft_model, tokenizer, data, beta=0.1)  # plain SFT model = TRL's reference
    assert before == run.metrics["heldout"]["before"]
    peft_model = PeftModel.from_pretrained(sft_model, str(run.path / "adapter")).eval()
    assert preference_metrics(peft_model, tokenizer, data, beta=0.1) == run.metrics["heldout"]["after"]
    merged, _ = load_model_and_tokenizer(cfg.model, str(run.path))
    batch = tokenizer(["<s><|user|>\n高血压会怎样？<|end|>\n<|assistant|>\n高血压常见头痛。"], return_tensors="pt",
                      add_special_tokens=False)
    with torch.no_grad():
        torch.testing.assert_close(merged.eval()(**batch).logits, peft_model(**batch).logits, atol=1e-5, rtol=0)
        with peft_model.disable_adapter():
            reference = peft_model(**batch).logits
    fresh, _ = load_model_and_tokenizer(cfg.model, str(sft_run.path))
    torch.testing.assert_close(reference, fresh.eval()(**batch).logits, atol=1e-6, rtol=0)


def test_resume_matches_uninterrupted_run(trained, sft_run, tmp_path, monkeypatch):
    """Saving every step, the resumed run's saves 4 and 5 rotate out checkpoint-3, the one it resumed from
    (save_total_limit=2): its metrics must not need that checkpoint after training."""
    monkeypatch.setenv("QILIN_ROOT", str(tmp_path))
    monkeypatch.setenv("QILIN_ARTIFACTS", str(tmp_path / "artifacts"))
    cfg = load_config("tiny", {**OVERRIDES, "dpo.save_steps": 1})
    run, _ = trained
    data, heldout = Dataset.from_list(pairs(32, 0)), Dataset.from_list(pairs(2, 1))
    with pytest.raises(KeyboardInterrupt):
        run_dpo(cfg, dataset=data, sft_run=sft_run, progress=False, heldout=heldout, callbacks=[InterruptAfterSave(3)])
    resumed = run_dpo(cfg, dataset=data, sft_run=sft_run, progress=False, heldout=heldout)
    assert resumed.metrics["resumed_from"] == "checkpoint-3" and resumed.metrics["tokens_per_second"] > 0
    assert_same_adapter(run, resumed)
    assert run_dpo(cfg, dataset=data, sft_run=sft_run, progress=False, heldout=heldout).reused


def test_non_finite_loss_stops_the_stage(sft_run, tmp_path, monkeypatch):
    from qilin_lib.train.common import NonFiniteError

    monkeypatch.setenv("QILIN_ROOT", str(tmp_path))
    monkeypatch.setenv("QILIN_ARTIFACTS", str(tmp_path / "artifacts"))
    cfg = load_config("tiny", {**OVERRIDES, "dpo.max_steps": 4, "dpo.save_steps": 100})
    with pytest.raises(NonFiniteError, match=r"^dpo: non-finite loss=nan, grad_norm=nan at step 3"):
        run_dpo(cfg, dataset=Dataset.from_list(pairs(32, 0)), sft_run=sft_run, progress=False,
                heldout=Dataset.from_list(pairs(2, 1)), callbacks=[PoisonWeights()])
    assert not list((tmp_path / "artifacts" / "tiny").glob("dpo-*/manifest.json"))
    assert not (tmp_path / "results" / "tiny" / "train_dpo.json").exists()
