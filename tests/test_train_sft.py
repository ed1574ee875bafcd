"""qilin_lib.train.sft: the response-only label mask, the MedicalGPT length rule, and the LoRA SFT stage
(artifact, results, resume, adapter/merge consistency) on a 2-layer, hidden-64 model built here."""

import json
import random

import pytest
import torch
from datasets import Dataset

from faults import InterruptAfterSave, PoisonWeights, assert_same_adapter
from qilin_lib.config import load_config
from qilin_lib.modeling import build_tiny_model, build_tiny_tokenizer, load_model_and_tokenizer
from qilin_lib.train.sft import IGNORE_INDEX, run_sft, tokenize_conversation

DISEASES = ["高血压", "糖尿病", "肺炎", "胃炎", "哮喘", "偏头痛"]
SYMPTOMS = ["头痛", "口渴", "咳嗽", "腹痛", "气短", "恶心"]
DRUGS = ["氨氯地平", "二甲双胍", "阿莫西林", "奥美拉唑", "沙丁胺醇", "布洛芬"]
OVERRIDES = {  # a 2-layer, hidden-64 model; a few optimizer steps
    "model.vocab_size": 400, "model.hidden_size": 64, "model.num_layers": 2, "model.num_heads": 4,
    "model.intermediate_size": 128, "model.max_position_embeddings": 256,
    "sft.max_steps": 8, "sft.per_device_batch_size": 4, "sft.save_steps": 4, "sft.logging_steps": 1,
    "sft.learning_rate": 3e-3, "sft.warmup_ratio": 0.0, "sft.lr_scheduler": "constant",
}


def conversations(n=40, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i = rng.randrange(len(DISEASES))
        d, s, m = DISEASES[i], SYMPTOMS[i], DRUGS[i]
        turns = [{"role": "user", "content": f"{d}有什么症状？"}, {"role": "assistant", "content": f"{d}常见{s}。"}]
        if rng.random() < 0.5:
            turns += [{"role": "user", "content": "吃什么药？"}, {"role": "assistant", "content": f"可以用{m}。"}]
        out.append({"messages": turns, "source": "test"})
    return out


@pytest.fixture(scope="module")
def tokenizer():
    texts = [m["content"] for c in conversations(200) for m in c["messages"]] + ["你是医生。", "Thanks", "Take care"]
    return build_tiny_tokenizer(texts, vocab_size=400, model_max_length=256)


@pytest.fixture(scope="module")
def cfg():
    return load_config("tiny", OVERRIDES)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, tokenizer, cfg):
    path = tmp_path_factory.mktemp("base")
    tokenizer.save_pretrained(path)
    build_tiny_model(cfg.model, tokenizer, seed=0).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    """A data-stage directory holding only eval/probe_texts (two knowledge-base diseases)."""
    from qilin_lib.data import kg

    path = tmp_path_factory.mktemp("data")
    rows = []
    for entity, group in zip(kg.kb_entities()[:2], ("taught", "control")):
        values = entity["symptoms"][:2]
        rows.append({"text": f"{entity['name']}常见{'、'.join(values)}。", "disease": entity["name"],
                     "field": "symptoms", "group": group})
    Dataset.from_list(rows).save_to_disk(str(path / "eval" / "probe_texts"))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cfg, base_dir, probe_dir):
    """One uninterrupted run, shared by the stage tests."""
    root = tmp_path_factory.mktemp("sft_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QILIN_ROOT", str(root))
        mp.setenv("QILIN_ARTIFACTS", str(root / "artifacts"))
        run = run_sft(cfg, dataset=Dataset.from_list(conversations()), base_model=base_dir, progress=False,
                      probe_data=probe_dir)
        yield run, root


# ------------------------------------------------------------------------------------ tokenisation
def test_two_turn_label_mask_token_by_token(tokenizer):
    conv = [{"role": "system", "content": "你是医生。"},
            {"role": "user", "content": "高血压有什么症状？"},
            {"role": "assistant", "content": "高血压常见头痛。"},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": "Take care"}]
    out = tokenize_conversation(tokenizer, conv, max_source_length=256, max_target_length=256)

    def enc(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    end = tokenizer.convert_tokens_to_ids("<|end|>")
    ids, labels = [tokenizer.bos_token_id], [IGNORE_INDEX]
    for k, m in enumerate(conv):
        head, body = enc(f"<|{m['role']}|>\n"), enc(m["content"]) + [end]
        ids += head + body
        labels += [IGNORE_INDEX] * len(head) + (body if m["role"] == "assistant" else [IGNORE_INDEX] * len(body))
        if k < len(conv) - 1:  # the newline after the last assistant turn carries no loss and is dropped
            ids += enc("\n")
            labels += [IGNORE_INDEX]
    assert out["input_ids"] == ids
    assert out["labels"] == labels
    assert out["attention_mask"] == [1] * len(ids)
    answer = [t for t in out["labels"] if t != IGNORE_INDEX]
    assert tokenizer.decode(answer) == "高血压常见头痛。<|end|>Take care<|end|>"


def test_truncation_limits(tokenizer):
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    header = tokenizer("<|assistant|>\n", add_special_tokens=False)["input_ids"]
    long_q, long_a = "头痛" * 60, "咳嗽" * 60
    conv = [{"role": "user", "content": long_q}, {"role": "assistant", "content": long_a},
            {"role": "user", "content": "还有呢？"}, {"role": "assistant", "content": "没有了。"}]
    out = tokenize_conversation(tokenizer, conv, max_source_length=16, max_target_length=10)
    ids, labels = out["input_ids"], out["labels"]
    # turn 1: source cut to 16 tokens, keeping its start and the answer header
    assert ids[:14] == tokenizer.apply_chat_template(conv[:1], tokenize=True, return_dict=True)["input_ids"][:14]
    assert ids[14:16] == header and labels[:16] == [IGNORE_INDEX] * 16
    # target cut to 10 tokens: 9 answer tokens and the end-of-turn token
    target = ids[16:26]
    assert labels[16:26] == target and target[-1] == end
    assert tokenizer.decode(target[:-1]) == long_a[:9]
    # turn 2 would take the sequence past max_source_length + max_target_length = 26: dropped (MedicalGPT)
    assert len(ids) == 26
    # a larger cap (or none) keeps it, with the same first turn
    for cap in (50, 0):
        longer = tokenize_conversation(tokenizer, conv, max_source_length=16, max_target_length=10, max_length=cap)
        assert longer["input_ids"][:26] == ids
        assert tokenizer.decode([t for t in longer["labels"][26:] if t != IGNORE_INDEX]) == "没有了。<|end|>"
    # limits hold for every turn
    for lim_s, lim_t in ((8, 4), (20, 3)):
        out = tokenize_conversation(tokenizer, conv, lim_s, lim_t, max_length=0)
        runs, cur, masked = [], [], None
        for t in out["labels"]:
            m = t == IGNORE_INDEX
            if masked is not None and m != masked:
                runs.append((masked, len(cur)))
                cur = []
            cur.append(t)
            masked = m
        runs.append((masked, len(cur)))
        assert all(n <= (lim_s if m else lim_t) for m, n in runs)
        assert sum(1 for m, _ in runs if not m) == 2  # both assistant turns trained


# ----------------------------------------------------------------------------------------- stage
def test_stage_outputs_and_results(trained, cfg):
    run, root = trained
    m = run.metrics
    assert not run.reused and run.path.is_dir() and (run.path / "manifest.json").exists()
    assert (run.path / "adapter" / "adapter_config.json").exists() and (run.path / "config.json").exists()
    saved = json.loads((root / "results" / "tiny" / "train_sft.json").read_text())
    assert saved["global_steps"] == 8 and saved["stage"] == "sft"
    assert 0 < m["trainable_params"] < m["total_params"] and m["tokens_per_second"] > 0
    assert set(m["hashes"]) == {"data", "base_model"}
    probe = m["probe_perplexity"]
    assert set(probe) == {"before", "after"} and set(probe["after"]["facts"]) == {"taught", "control"}
    assert (root / "figures" / "tiny" / "loss_sft.png").exists()
    assert not (run.path.parent / (run.path.name + ".work")).exists()  # checkpoints cleaned up
    # training loss fell
    losses = [loss for _, loss in m["loss_curve"]]
    assert len(losses) == 8 and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2


def test_lora_changed_base_did_not(trained, cfg, base_dir):
    from safetensors.torch import load_file

    run, _ = trained
    adapter = load_file(str(run.path / "adapter" / "adapter_model.safetensors"))
    b_weights = [v for k, v in adapter.items() if "lora_B" in k]
    assert b_weights and all(v.abs().sum() > 0 for v in b_weights)  # B starts at zero: all trained
    assert not any("lora" not in k for k in adapter)                 # the adapter holds LoRA weights only
    base, _ = load_model_and_tokenizer(cfg.model, str(base_dir))
    merged, _ = load_model_and_tokenizer(cfg.model, str(run.path))
    scale = cfg.sft.lora.alpha / cfg.sft.lora.r
    base_sd, merged_sd = base.state_dict(), merged.state_dict()
    n_lora = 0
    for name, w in base_sd.items():
        stem = name.removesuffix(".weight")
        a = next((v for k, v in adapter.items() if k.endswith(f"{stem}.lora_A.weight")), None)
        if a is None:  # embeddings, norms: untouched
            assert torch.equal(merged_sd[name], w), name
        else:          # targeted linears: base + scale * B @ A, nothing else
            b = adapter[next(k for k in adapter if k.endswith(f"{stem}.lora_B.weight"))]
            torch.testing.assert_close(merged_sd[name], w + scale * b @ a, atol=1e-5, rtol=0)
            n_lora += 1
    assert n_lora == 7 * cfg.model.num_layers  # all-linear: q k v o gate up down


def test_adapter_reload_and_merge_give_identical_logits(trained, cfg, base_dir):
    from peft import PeftModel

    run, _ = trained
    base, tokenizer = load_model_and_tokenizer(cfg.model, str(base_dir))
    reloaded = PeftModel.from_pretrained(base, str(run.path / "adapter")).eval()
    merged, _ = load_model_and_tokenizer(cfg.model, str(run.path))
    batch = tokenizer.apply_chat_template([conversations(1, seed=5)[0]["messages"]], tokenize=True,
                                          return_dict=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(merged.eval()(**batch).logits, reloaded(**batch).logits, atol=1e-5, rtol=0)
        assert not torch.allclose(base.eval()(**batch).logits, merged(**batch).logits)  # SFT did something


def test_reuse_unless_forced(trained, cfg, base_dir, monkeypatch):
    run, root = trained
    monkeypatch.setenv("QILIN_ROOT", str(root))
    monkeypatch.setenv("QILIN_ARTIFACTS", str(root / "artifacts"))
    again = run_sft(cfg, dataset=Dataset.from_list(conversations()), base_model=base_dir, progress=False)
    assert again.reused and again.path == run.path and again.metrics == run.metrics


def test_resume_matches_uninterrupted_run(trained, cfg, base_dir, sandbox):
    run, _ = trained
    data = Dataset.from_list(conversations())
    with pytest.raises(KeyboardInterrupt):
        run_sft(cfg, dataset=data, base_model=base_dir, progress=False, callbacks=[InterruptAfterSave(4)])
    resumed = run_sft(cfg, dataset=data, base_model=base_dir, progress=False)
    assert resumed.metrics["resumed_from"] == "checkpoint-4" and resumed.metrics["global_steps"] == 8
    assert_same_adapter(run, resumed)


def interrupted_saving_every_2(base_dir, sandbox):
    """An SFT run saving every 2 steps, interrupted after checkpoint-4: its work dir holds checkpoint-2 and
    checkpoint-4 (save_total_limit=2), and a resumed run's saves rotate out the checkpoint it resumed from.
    Returns (cfg, data, work dir)."""
    cfg = load_config("tiny", {**OVERRIDES, "sft.save_steps": 2})
    data = Dataset.from_list(conversations())
    with pytest.raises(KeyboardInterrupt):
        run_sft(cfg, dataset=data, base_model=base_dir, progress=False, callbacks=[InterruptAfterSave(4)])
    (work,) = (sandbox / "artifacts" / "tiny").glob("sft-*.work")
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    return cfg, data, work


def test_resume_survives_rotation_of_its_checkpoint(trained, base_dir, sandbox):
    """Resumed from checkpoint-4, the run saves 6 and 8 and the Trainer deletes checkpoint-4 on the way:
    what the metrics need from it is read before training starts."""
    run, _ = trained
    cfg, data, _ = interrupted_saving_every_2(base_dir, sandbox)
    resumed = run_sft(cfg, dataset=data, base_model=base_dir, progress=False)
    m = resumed.metrics
    assert m["resumed_from"] == "checkpoint-4" and m["global_steps"] == 8
    assert m["tokens_trained"] == run.metrics["tokens_trained"] and m["tokens_per_second"] > 0
    assert_same_adapter(run, resumed)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(trained, base_dir, sandbox):
    """A truncated trainer_state.json in checkpoint-4 (a full disk, a killed copy): the rerun resumes from
    checkpoint-2 and ends with the uninterrupted run's adapter instead of failing on every rerun."""
    run, _ = trained
    cfg, data, work = interrupted_saving_every_2(base_dir, sandbox)
    state = work / "checkpoint-4" / "trainer_state.json"
    state.write_text(state.read_text("utf-8")[:40], "utf-8")
    resumed = run_sft(cfg, dataset=data, base_model=base_dir, progress=False)
    assert resumed.metrics["resumed_from"] == "checkpoint-2" and resumed.metrics["global_steps"] == 8
    assert_same_adapter(run, resumed)


def test_non_finite_loss_stops_the_stage(cfg, base_dir, sandbox):
    from qilin_lib.train.common import NonFiniteError

    with pytest.raises(NonFiniteError, match=r"^sft: non-finite loss=nan, grad_norm=nan at step 3"):
        run_sft(cfg, dataset=Dataset.from_list(conversations()), base_model=base_dir, progress=False,
                callbacks=[PoisonWeights()])
    assert not list((sandbox / "artifacts" / "tiny").glob("sft-*/manifest.json"))
    assert not (sandbox / "results" / "tiny" / "train_sft.json").exists()
