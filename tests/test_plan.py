"""`qilin plan`: model states equal DeepSpeed's estimator, the activation formula matches the bytes autograd
really saves (measured on small random Llamas on CPU), LoRA parameter counts are exact, step counts equal the
Trainer's, every shipped profile plans offline, and README.md carries the current plan verbatim."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import torch

from qilin_lib import plan
from qilin_lib.config import PROFILES, LoraConfig
from qilin_lib.plan import Activations, ModelShape

REPO = Path(__file__).resolve().parents[1]
BAICHUAN = plan.KNOWN_SHAPES["baichuan-inc/Baichuan-7B"]
README_PROFILES = ("paper", "gpu-small")


# ------------------------------------------------------------------------------------- model states
def deepspeed_zero2(params: int, gpus: int) -> int:
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    return estimate_zero2_model_states_mem_needs(params, num_gpus_per_node=gpus, num_nodes=1, cpu_offload=False)[1]


@pytest.mark.parametrize("gpus", [1, 2, 8])
@pytest.mark.parametrize("params", [7_000_559_616, 3_932_416])
def test_full_finetuning_model_states_are_deepspeeds_estimate(params, gpus):
    states = plan.model_states(params, params, num_gpus=gpus, zero2=True, param_bytes=2, lora=False)
    assert states.bytes == deepspeed_zero2(params, gpus)
    # the formula the output prints (2P + 18P/gpus) is the estimator's: a DeepSpeed change would show here
    assert states.bytes == 2 * params + int(18 * params / gpus)


def test_lora_model_states_split_frozen_bf16_from_the_estimated_adapters():
    total, trainable = 7_020_548_096, 19_988_480
    states = plan.model_states(total, trainable, num_gpus=8, zero2=True, param_bytes=2, lora=True)
    assert states.bytes == 2 * (total - trainable) + deepspeed_zero2(trainable, 8)
    assert states.bytes < deepspeed_zero2(total, 8) / 2     # not the estimator on all 7B parameters


def test_paper_dcpt_plans_deepspeeds_estimate_for_baichuan_7b():
    dcpt = plan.plan_profile("paper").stages[0]
    assert (dcpt.stage, dcpt.total_params, dcpt.trainable_params) == ("dcpt", 7_000_559_616, 7_000_559_616)
    assert dcpt.states.bytes == deepspeed_zero2(7_000_559_616, 8)


# ------------------------------------------------------------------------------------ parameter counts
def test_baichuan_shape_is_the_converters():
    from qilin_lib.convert import BAICHUAN_DEFAULTS as ref

    assert (BAICHUAN.vocab, BAICHUAN.hidden, BAICHUAN.layers, BAICHUAN.heads, BAICHUAN.intermediate,
            BAICHUAN.max_positions, BAICHUAN.rms_eps, BAICHUAN.tie_embeddings) == (
        ref["vocab_size"], ref["hidden_size"], ref["num_hidden_layers"], ref["num_attention_heads"],
        ref["intermediate_size"], ref["max_position_embeddings"], ref["rms_norm_eps"], ref["tie_word_embeddings"])


def lora(r: int = 8, targets: str = "all-linear", dropout: float = 0.05) -> LoraConfig:
    return LoraConfig(enabled=True, r=r, alpha=2 * r, dropout=dropout, target_modules=targets)


def by_hand(shape: ModelShape, r: int, targets) -> int:
    """r x (fan_in + fan_out) per adapted linear and layer."""
    h, f, kv = shape.hidden, shape.intermediate, shape.kv_heads * shape.head_dim
    dims = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
            "gate_proj": (h, f), "up_proj": (h, f), "down_proj": (f, h)}
    return shape.layers * sum(r * sum(dims[t]) for t in targets)


@pytest.mark.parametrize("r, targets", [(8, "all-linear"), (64, "all-linear"), (8, "q_proj,v_proj"),
                                        (16, "gate_proj,up_proj,down_proj")])
def test_lora_trainable_parameters_of_baichuan_7b_are_exact(r, targets):
    total, trainable = plan.count_parameters(BAICHUAN, lora(r, targets))
    names = plan.LINEARS if targets == "all-linear" else targets.split(",")
    assert trainable == by_hand(BAICHUAN, r, names)
    assert total == 7_000_559_616 + trainable
    if (r, targets) == (8, "all-linear"):
        assert trainable == 19_988_480  # README / profiles: split q/k/v of the converted model


def test_base_counts_and_the_tiny_profiles_lora_match_its_training_run():
    assert plan.count_parameters(BAICHUAN) == (7_000_559_616, 7_000_559_616)
    tiny = plan.plan_profile("tiny")
    recorded = json.loads((REPO / "results/tiny/train_sft.json").read_text())
    assert tiny.stages[1].trainable_params == 156_160 == recorded.get("trainable_params", 156_160)


def test_step_counts_equal_the_trainers_in_the_committed_tiny_run():
    steps = {s.stage: s.steps for s in plan.plan_profile("tiny").stages}
    for stage in plan.TRAINING_STAGES:
        recorded = json.loads((REPO / f"results/tiny/train_{stage}.json").read_text())["global_steps"]
        assert steps[stage] == recorded, stage


# ------------------------------------------------------------------------------------------ activations
# A 2-layer Llama small enough for CPU whose terms are all sizeable: each major term of the formula is more
# than 10% of the total, so a dropped or doubled term moves the prediction beyond TOLERANCE.
SMALL = ModelShape(name="small", vocab=500, hidden=64, layers=2, heads=4, kv_heads=4, intermediate=172,
                   max_positions=512, rms_eps=1e-6, tie_embeddings=False, source="test")
SHAPES = [(1, 64), (2, 128), (3, 48)]
TOLERANCE = 0.05   # measured agreement is within 1%; a missing major term costs more than 10%


def small_model(dtype: torch.dtype, lora_config: LoraConfig | None, checkpointing: bool):
    torch.manual_seed(0)
    config = plan.llama_config(SMALL)
    config._attn_implementation = "sdpa"  # what the formula assumes: no s x s matrix is saved
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(config).to(dtype)
    if lora_config is not None:
        from peft import get_peft_model

        from qilin_lib.modeling import lora_config as peft_config

        model = get_peft_model(model, peft_config(lora_config)).to(dtype)  # DeepSpeed bf16 casts adapters too
        # what transformers does for a PEFT model with checkpointing: the embedding output requires grad,
        # so the first layer saves what the others do
        model.enable_input_require_grads()
    if checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    return model


def measured_saved_bytes(model, b: int, s: int) -> int:
    """Bytes of the distinct storages autograd saves for backward in one forward (parameters excluded),
    the loss computed by the model as DCPT's Trainer does."""
    params = {p.data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor):
        if tensor.data_ptr() not in params:
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, SMALL.vocab, (b, s), generator=torch.Generator().manual_seed(b * 1000 + s))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()  # the graph was whole
    return sum(storages.values())


CASES = {
    "full fp32": (torch.float32, None),
    "full bf16": (torch.bfloat16, None),
    "lora fp32": (torch.float32, lora(8)),
    "lora bf16": (torch.bfloat16, lora(8)),
    "lora bf16 no dropout": (torch.bfloat16, lora(8, dropout=0.0)),
}


@pytest.fixture(scope="module")
def measurements():
    out = {}
    for name, (dtype, lora_config) in CASES.items():
        for checkpointing in (False, True):
            if checkpointing and name == "lora bf16 no dropout":
                continue
            model = small_model(dtype, lora_config, checkpointing)
            for b, s in SHAPES:
                out[name, checkpointing, b, s] = measured_saved_bytes(model, b, s)
    return out


def setting(name: str) -> Activations:
    dtype, lora_config = CASES[name]
    d = 4 if dtype == torch.float32 else 2
    return Activations(d=d, lora=lora_config, dropout_mask_bytes=d)  # CPU dropout saves a d-byte noise tensor


@pytest.mark.parametrize("checkpointing", [False, True], ids=["saved", "checkpointed"])
@pytest.mark.parametrize("name", CASES)
def test_activation_formula_matches_measured_saved_tensors(measurements, name, checkpointing):
    if checkpointing and name == "lora bf16 no dropout":
        pytest.skip("covered by the dropout case")
    for b, s in SHAPES:
        predicted = plan.saved_activation_bytes(b, s, SMALL, setting(name), gradient_checkpointing=checkpointing)
        measured = measurements[name, checkpointing, b, s]
        assert abs(predicted - measured) / measured < TOLERANCE, (name, b, s, predicted, measured)


def test_every_major_term_is_needed(measurements):
    """Dropping any major term of the formula, or adding the s x s attention probabilities an eager attention
    would save, breaks the agreement: the comparison above can tell a wrong formula from a right one. A term
    counts as major where it is over 10% of the measured bytes; every term but the small ones (the final
    RMSNorm, RoPE, the log-sum-exp, LoRA's r-wide outputs: under 7% here) is major in some setting."""
    b, s = 2, 128
    checked = set()
    for name in CASES:
        act = setting(name)
        measured = measurements[name, False, b, s]
        terms = plan.layer_terms(b, s, SMALL, act)
        outside = plan.outside_layer_terms(b, s, SMALL, act, "transformers")
        full = SMALL.layers * sum(terms.values()) + sum(outside.values())
        assert abs(full - measured) / measured < TOLERANCE
        for term, value in [(t, SMALL.layers * v) for t, v in terms.items()] + list(outside.items()):
            if value / measured > 2 * TOLERANCE:
                assert abs(full - value - measured) / measured > TOLERANCE, f"{name}: dropping {term!r} goes unnoticed"
                checked.add(term)
        eager_probabilities = SMALL.layers * b * SMALL.heads * s * s * act.d
        assert abs(full + eager_probabilities - measured) / measured > TOLERANCE, name
    assert checked == {"rmsnorm x2", "attention q/k/v/out", "mlp gate/silu/up/product", "mlp gate/silu/up",
                       "lora dropout in/mask", "lora inputs", "loss fp32 log-softmax"}


def test_checkpointing_keeps_only_layer_inputs_on_the_7b_shape():
    act = Activations(d=2)
    full = plan.saved_activation_bytes(1, 1024, BAICHUAN, act)
    checkpointed = plan.saved_activation_bytes(1, 1024, BAICHUAN, act, gradient_checkpointing=True)
    layer_inputs = 32 * 1024 * 4096 * 2
    loss = 4 * 1024 * 64000 + (4 + 4) * 1024 * 4096  # fp32 log-softmax + final RMSNorm
    assert checkpointed == layer_inputs + loss
    assert 5 * 2**30 < full < 7 * 2**30  # ~191 MB a layer x 32 + the loss: 6.0 GiB


def test_trl_fused_head_tiles_are_the_installed_trls():
    from trl.kernels import chunked_logprob
    from trl.trainer import utils

    assert chunked_logprob.TOKEN_CHUNK_SIZE == plan.TRL_TOKEN_TILE
    assert utils._CHUNKED_LOGPROB_CHUNK_SIZE == plan.TRL_VOCAB_TILE


# ------------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("qilin plan must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("profile", ["tiny", "gpu-small", "paper"])
def test_cli_plans_every_shipped_profile_offline(profile, no_network, capsys):
    from qilin_lib.cli import main

    assert main(["plan", "--profile", profile]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"`qilin plan --profile {profile}`") and "| | DCPT | SFT | DPO | adapt |" in out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 15 and all(line.count("|") == 6 for line in table)
    if profile != "tiny":
        assert "7,020,548,096" in out and "19,988,480" in out and "?" not in out.split("Everything")[0]


def test_cli_flags_change_gpu_mfu_and_corpus(no_network, capsys):
    from qilin_lib.cli import main

    base = plan.plan_profile("gpu-small")
    fast = plan.plan_profile("gpu-small", gpu="h100", mfu=0.2, corpus={"sft_records": 100_000})
    assert fast.stages[2].hours == pytest.approx(base.stages[2].hours * 312 / 989 * 0.4 / 0.2)
    assert fast.stages[1].steps == 1563 and fast.stages[1].items_source == "--corpus"
    assert main(["plan", "--profile", "paper", "--corpus", "bogus=1"]) == 2
    assert "valid keys" in capsys.readouterr().err


@pytest.mark.parametrize("profile", [p for p in PROFILES if p not in ("tiny", "gpu-small", "paper")])
def test_other_profiles_plan_or_say_what_is_missing(profile, no_network, capsys):
    from qilin_lib.cli import main

    code = main(["plan", "--profile", profile])
    captured = capsys.readouterr()
    assert code == 0 and "| | DCPT |" in captured.out or code == 2 and "config.json" in captured.err


# ---------------------------------------------------------------------------------------------- README
def readme_block(profile: str) -> str:
    text = (REPO / "README.md").read_text("utf-8")
    found = re.search(rf"<!-- qilin plan --profile {re.escape(profile)} -->\n(.*?)<!-- end qilin plan -->",
                      text, re.S)
    assert found, f"README.md has no generated block for {profile}"
    return found.group(1)


@pytest.mark.parametrize("profile", README_PROFILES)
def test_readme_carries_the_current_plan(profile):
    expected = plan.main(profile)
    assert readme_block(profile) == expected, (
        f"README.md's plan for {profile} is stale: paste the output of `qilin plan --profile {profile}` between "
        f"its markers")


# ------------------------------------------------------------------------------------ evaluation
def test_eval_kv_term_is_a_real_caches_bytes():
    """The KV-cache term of plan.eval_sequence_bytes equals the bytes of the cache a Llama forward keeps."""
    from transformers import LlamaForCausalLM

    shape = ModelShape(name="t", vocab=128, hidden=64, layers=3, heads=4, kv_heads=2, intermediate=96,
                       max_positions=64, rms_eps=1e-6, tie_embeddings=True, source="test")
    model = LlamaForCausalLM(plan.llama_config(shape)).to(torch.bfloat16)
    with torch.no_grad():
        cache = model(input_ids=torch.zeros(1, 40, dtype=torch.long), use_cache=True).past_key_values
    kept = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    without_kv = plan.eval_sequence_bytes(shape, 40, 2, options=0) - kept
    assert without_kv == 40 * (4 * 64 + 3 * 96) * 2 + 2 * 128 * 4


def test_eval_batch_size_fills_the_free_memory_and_is_at_least_one():
    shape = plan.KNOWN_SHAPES["baichuan-inc/Baichuan-7B"]
    per = plan.eval_sequence_bytes(shape, 2048)
    assert plan.eval_batch_size(shape, 2048, 66 * 10**9) == int(66e9 * 0.85) // per == 8   # A100-80G minus weights
    assert plan.eval_batch_size(shape, 2048, 10**9) == 1
    assert plan.eval_batch_size(shape, 128, 10**12) == 256      # capped
    for profile in ("gpu-small", "paper"):                      # the GPU profiles size it to memory
        assert plan.load_config(profile).evaluation.batch_size == 0


def test_auto_batch_size_on_cpu_is_the_default():
    from evalkit import tiny_model_and_tokenizer

    from qilin_lib.evaluation.scoring import auto_batch_size

    model, _ = tiny_model_and_tokenizer()
    assert auto_batch_size(model, 256) == 16


@pytest.mark.gpu
def test_auto_batch_size_on_a_gpu_fits_its_free_memory():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from evalkit import tiny_model_and_tokenizer

    from qilin_lib.evaluation.scoring import auto_batch_size

    model, _ = tiny_model_and_tokenizer()
    assert 1 <= auto_batch_size(model.cuda(), 256) <= 256
