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
