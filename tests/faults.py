"""Faults planted into training runs by the stage tests."""

import torch
from transformers import TrainerCallback


class PoisonWeights(TrainerCallback):
    """After optimizer step 2, every weight of the model becomes NaN (a diverged run, made deterministic)."""

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 2:
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))


class InterruptAfterSave(TrainerCallback):
    """A job killed right after checkpoint-`step` is written (KeyboardInterrupt, as Ctrl-C or a scheduler)."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"simulated interruption after checkpoint-{self.step}")


def assert_same_adapter(run, other, atol: float = 1e-5) -> None:
    """Two stage runs ended with the same LoRA adapter tensors (a resumed run against an uninterrupted one)."""
    from safetensors.torch import load_file

    want = load_file(str(run.path / "adapter" / "adapter_model.safetensors"))
    got = load_file(str(other.path / "adapter" / "adapter_model.safetensors"))
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=atol, rtol=0)
