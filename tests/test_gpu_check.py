"""benchmarks/gpu_check.py runs every stage in its CPU-small mode with finite numbers, and stops with exit
status 1 on a non-finite loss."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
STAGES = ("dcpt", "sft", "dpo", "generate", "mcq")
TRAINING = ("dcpt", "sft", "dpo")


def results(stdout: str) -> dict[str, dict[str, str]]:
    out = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            fields = dict(item.split("=", 1) for item in line.split()[1:])
            out[fields["stage"]] = fields
    return out


def test_cpu_small_mode_runs_every_stage_with_finite_numbers():
    # --peak-tflops gives the CPU a nominal peak so that the utilisation is a number too
    run = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--small", "--steps", "1",
                          "--peak-tflops", "0.05"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    found = results(run.stdout)
    assert tuple(found) == STAGES, run.stdout
    for stage, fields in found.items():
        for key in ("tokens_per_s", "mfu", "plan_mem_gib"):
            value = float(fields[key])
            assert math.isfinite(value) and value > 0, (stage, key, value)
        if stage in TRAINING:
            assert math.isfinite(float(fields["loss"])), (stage, fields)
        assert f"[{stage}]" in run.stdout
    assert "torch AdamW" in run.stdout  # the DCPT line says which optimizer path ran


@pytest.fixture
def gpu_check(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_non_finite_loss_exits_non_zero(gpu_check, monkeypatch, capsys):
    def nan_loss(loss, stage):
        raise gpu_check.NonFiniteLoss(f"{stage}: loss nan")

    monkeypatch.setattr(gpu_check, "check_finite", nan_loss)
    assert gpu_check.main(["--device", "cpu", "--small", "--steps", "1"]) == 1
    assert "non-finite loss: dcpt" in capsys.readouterr().err
