"""Every load runs a probe forward pass: non-finite logits fail loudly, naming the model and the tensors that
hold NaN/inf; a healthy load is unchanged by the check (RNG streams, mode, weights)."""

from __future__ import annotations

import pytest
import torch

from qilin_lib import modeling
from qilin_lib.config import ModelConfig
from qilin_lib.modeling import (NonFiniteModelError, build_tiny_model, build_tiny_tokenizer, check_finite,
                                load_model_and_tokenizer)

SMALL = ModelConfig(vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                    max_position_embeddings=64)
TEXTS = ["高血压患者常有头痛、头晕。", "Fever 39C, take ibuprofen.", "肺炎常见咳嗽和发热。"] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer(TEXTS, vocab_size=300, model_max_length=64)


def save(tmp_path, tokenizer, poison: str | None = None):
    """A tiny Llama checkpoint; `poison`: the parameter that gets one NaN."""
    model = build_tiny_model(SMALL, tokenizer, seed=0)
    if poison:
        with torch.no_grad():
            model.get_parameter(poison)[0, 0] = float("nan")
    tokenizer.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    return tmp_path


def test_nan_weight_fails_the_load_and_is_named(tmp_path, tokenizer):
    path = save(tmp_path, tokenizer, poison="model.layers.1.self_attn.q_proj.weight")
    with pytest.raises(NonFiniteModelError) as err:
        load_model_and_tokenizer(SMALL, str(path), device="cpu")
    message = str(err.value)
    assert message.startswith(f"{path}: a ") and "non-finite logits" in message
    assert "non-finite values in model.layers.1.self_attn.q_proj.weight" in message
    assert "mlp" not in message and "embed_tokens" not in message  # only the poisoned tensor is named


def test_nan_buffer_fails_the_load_and_is_named(tmp_path, tokenizer, monkeypatch):
    """Llama's only buffer (RoPE inv_freq) is not saved, so the loader is made to leave it NaN: what
    Baichuan's hub code suffers under transformers 5 (uninitialised non-persistent RoPE buffers)."""
    path = save(tmp_path, tokenizer)
    load = modeling.AutoModelForCausalLM.from_pretrained

    def broken_buffers(*args, **kwargs):
        model = load(*args, **kwargs)
        model.model.rotary_emb.inv_freq.fill_(float("nan"))
        return model

    monkeypatch.setattr(modeling.AutoModelForCausalLM, "from_pretrained", broken_buffers)
    with pytest.raises(NonFiniteModelError, match=r"non-finite values in model\.rotary_emb\.inv_freq$"):
        load_model_and_tokenizer(SMALL, str(path), device="cpu")


def test_non_finite_logits_from_finite_tensors_say_so(tokenizer):
    model = build_tiny_model(SMALL, tokenizer, seed=0)
    with torch.no_grad():
        model.model.norm.weight.fill_(3e38)  # finite, but the hidden states it scales overflow float32
    with pytest.raises(NonFiniteModelError, match="every parameter and buffer is finite"):
        check_finite(model, tokenizer, "overflow")


def test_the_check_changes_neither_rng_nor_model(tmp_path, tokenizer):
    path = save(tmp_path, tokenizer)
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    model, _ = load_model_and_tokenizer(SMALL, str(path), device="cpu")
    assert torch.equal(torch.get_rng_state(), rng) and not model.training
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    check_finite(model, tokenizer, str(path))
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_a_pretrained_base_must_beat_chance_on_the_medical_probe(tmp_path, tokenizer):
    """Finite garbage (random or mis-mapped weights) predicts near chance: the bound names the model and the
    perplexity; a bound above it passes and returns the measured value."""
    from dataclasses import replace

    from qilin_lib.modeling import BrokenModelError, check_perplexity

    path = save(tmp_path, tokenizer)
    with pytest.raises(BrokenModelError, match=rf"{path}: perplexity [\d.]+ on a \d+-token medical probe exceeds "
                                               r"model.max_probe_perplexity 10"):
        load_model_and_tokenizer(replace(SMALL, max_probe_perplexity=10.0), str(path), device="cpu")
    model, tok = load_model_and_tokenizer(replace(SMALL, max_probe_perplexity=1e9), str(path), device="cpu")
    assert 10 < check_perplexity(model, tok, str(path), 1e9) < 10 * len(tok)   # random weights: near chance
