"""Multi-process training: the launcher, the shipped DeepSpeed/accelerate configs, and real runs on CPU
(2-process DDP over gloo through `qilin train`; a one-process DeepSpeed ZeRO-2 run)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest

from qilin_lib.cli import build_parser
from qilin_lib.config import TRAINING_STAGES, load_config
from qilin_lib.paths import PACKAGE_DIR
from qilin_lib.train import launch

REPO = PACKAGE_DIR.parent
DS_JSON = PACKAGE_DIR / "configs" / "deepspeed_zero2.json"
BAICHUAN_7B_HIDDEN = 4096

# A model and corpus small enough that two CPU processes finish DCPT in seconds; the same overrides go to
# the data stage and to the training run (the data config is part of the corpus hash DCPT looks up).
TINY = {
    "model.hidden_size": 64, "model.num_layers": 2, "model.num_heads": 2, "model.intermediate_size": 128,
    "model.vocab_size": 800,
    "dcpt.max_steps": 3, "dcpt.block_size": 64, "dcpt.per_device_batch_size": 2, "dcpt.logging_steps": 1,
    "dcpt.warmup_steps": 1, "dcpt.save_steps": 100,
    "data.tiny": {"n_dcpt_diseases": 8, "n_sft_diseases": 4, "n_control_diseases": 4, "restatements_per_fact": 5,
                  "n_cmexam_items": 10, "n_ceval_items": 8, "n_qa_test": 8, "n_probe_texts": 16,
                  "n_sft_single": 20, "n_sft_mcq": 5, "n_sft_multi": 6, "n_general_sft": 6, "n_dpo_train": 10,
                  "n_dpo_heldout": 6},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _autos(obj, path="") -> list[str]:
    """Every key path whose value is still "auto"."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _autos(v, f"{path}.{k}".lstrip("."))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _autos(v, f"{path}[{i}]")]
    return [path] if obj == "auto" else []


class _Baichuan7BStandIn:
    """trainer_config_finalize reads only model.config.hidden_size (for reduce_bucket_size "auto")."""
    class config:
        hidden_size = BAICHUAN_7B_HIDDEN


def _filled_config(stage: str, tmp_path, num_training_steps: int = 1000):
    """The shipped ZeRO-2 JSON with every "auto" filled the way the Trainer fills it, from the paper
    profile's TrainingArguments (training_kwargs drops `deepspeed` without a GPU: set it back)."""
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    from qilin_lib.train.common import deepspeed_config_path, training_kwargs

    cfg = load_config("paper")
    kwargs = training_kwargs(cfg, stage, tmp_path / stage, progress=False)
    kwargs["deepspeed"] = deepspeed_config_path(getattr(cfg, stage).deepspeed)
    assert kwargs["deepspeed"] == str(DS_JSON)
    args = TrainingArguments(**kwargs)
    ds = HfTrainerDeepSpeedConfig(kwargs["deepspeed"])
    ds.trainer_config_process(args)
    ds.trainer_config_finalize(args, _Baichuan7BStandIn, num_training_steps)
    return cfg, args, ds.config


# ------------------------------------------------------------------------------- shipped configs
def test_shipped_deepspeed_config_is_the_authors_zero2_with_autos():
    raw = json.loads(DS_JSON.read_text("utf-8"))
    zero = raw["zero_optimization"]
    assert zero["stage"] == 2 and zero["overlap_comm"] and zero["contiguous_gradients"]
    assert raw["bf16"]["enabled"] == "auto"
    assert {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
            "gradient_clipping", "bf16.enabled", "fp16.enabled", "zero_optimization.reduce_bucket_size",
            "scheduler.params.warmup_max_lr", "scheduler.params.total_num_steps"} <= set(_autos(raw))
    # no DeepSpeed optimizer block: the Trainer's torch AdamW (with its no-decay groups for biases and
    # norms, as in the authors' runs) needs no compiled DeepSpeed op, on GPU or CPU
    assert "optimizer" not in raw


@pytest.mark.parametrize("stage", ["dcpt", "sft", "dpo", "adapt"])
def test_deepspeed_config_fills_every_auto_and_validates(stage, tmp_path):
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    try:
        cfg, args, filled = _filled_config(stage, tmp_path)
        assert _autos(filled) == []
        ds = DeepSpeedConfig(filled)  # DeepSpeed's own parsing + batch assertions (world size 1: no group)
    finally:
        unset_hf_deepspeed_config()
    sc = getattr(cfg, stage)
    assert ds.zero_enabled and ds.zero_optimization_stage == 2
    assert ds.zero_config.overlap_comm and ds.zero_config.contiguous_gradients
    assert ds.zero_config.reduce_bucket_size == BAICHUAN_7B_HIDDEN ** 2
    assert ds.train_micro_batch_size_per_gpu == sc.per_device_batch_size
    assert ds.gradient_accumulation_steps == sc.gradient_accumulation_steps
    assert ds.train_batch_size == sc.per_device_batch_size * sc.gradient_accumulation_steps * ds.world_size
    assert ds.world_size == args.world_size == 1
    assert ds.gradient_clipping == args.max_grad_norm
    assert ds.scheduler_name == "WarmupDecayLR"
    assert ds.scheduler_params["warmup_max_lr"] == sc.learning_rate
    assert ds.scheduler_params["warmup_num_steps"] == round(0.05 * 1000)  # warmup_ratio 0.05
    assert ds.bfloat16_config.enabled == args.bf16 and not ds.float16_config.enabled  # bf16: GPU only


def test_deepspeed_batch_arithmetic_on_the_papers_eight_gpus(tmp_path, monkeypatch):
    """With 8 data-parallel ranks the filled train_batch_size is 64 x 1 x 8 (SFT), and DeepSpeed itself
    rejects a config filled for another world size."""
    import deepspeed.comm
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    class EightRanks:  # what DeepSpeed asks an mpu for
        @staticmethod
        def get_data_parallel_world_size():
            return 8

    try:
        _, _, single_filled = _filled_config("sft", tmp_path)
        with mock.patch.object(TrainingArguments, "world_size", new_callable=mock.PropertyMock, return_value=8):
            _, _, filled = _filled_config("sft", tmp_path)
    finally:
        unset_hf_deepspeed_config()
    assert filled["train_batch_size"] == 512 and _autos(filled) == []
    monkeypatch.setattr(deepspeed.comm, "get_rank", lambda *a, **k: 0)  # rank 0 of a running job
    ds = DeepSpeedConfig(filled, mpu=EightRanks())
    assert ds.world_size == 8 and ds.zero_optimization_stage == 2
    assert ds.train_batch_size == 64 * 1 * 8 == ds.train_micro_batch_size_per_gpu * ds.gradient_accumulation_steps * 8
    with pytest.raises(AssertionError, match="train_batch_size"):
        DeepSpeedConfig(single_filled, mpu=EightRanks())  # filled for 1 rank: 64 != 64 x 1 x 8


def test_accelerate_configs_load_with_accelerates_own_classes():
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.utils import DistributedType

    ds = load_config_from_file(str(PACKAGE_DIR / "configs" / "accelerate_deepspeed_zero2.yaml"))
    assert isinstance(ds, ClusterConfig) and ds.distributed_type == DistributedType.DEEPSPEED
    assert (REPO / ds.deepspeed_config["deepspeed_config_file"]).resolve() == DS_JSON.resolve()
    assert ds.mixed_precision is None  # with a deepspeed_config_file accelerate refuses it (the JSON decides)
    ddp = load_config_from_file(str(PACKAGE_DIR / "configs" / "accelerate_ddp.yaml"))
    assert ddp.distributed_type == DistributedType.MULTI_GPU and ddp.deepspeed_config == {}


def test_accelerate_deepspeed_launch_environment_is_accepted_by_the_trainer(tmp_path, monkeypatch):
    """`qilin train sft --profile paper` on 8 GPUs: accelerate's own parser and validation turn our command
    into the workers' environment, and TrainingArguments(deepspeed=...) accepts it (accelerate raises when
    the yaml sets fields that a deepspeed_config_file owns, mixed_precision included)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from qilin_lib.train.common import training_kwargs

    cmd = launch.launch_command("sft", "paper", {}, launcher="accelerate", nproc=8)
    args = launch_command_parser().parse_args(cmd[cmd.index("accelerate.commands.launch") + 1:])
    args, defaults, mp_from_config = _validate_launch_command(args)
    assert args.use_deepspeed and args.num_processes == 8 and args.module
    assert args.training_script == "qilin_lib.train.launch" and args.deepspeed_config_file == str(DS_JSON)
    args.deepspeed_fields_from_accelerate_config = ",".join(
        list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else []))
    _, env = prepare_deepspeed_cmd_env(args)
    assert env["ACCELERATE_DEEPSPEED_CONFIG_FILE"] == str(DS_JSON)
    for key, value in env.items():
        if key.startswith("ACCELERATE_"):
            monkeypatch.setenv(key, value)
    kwargs = training_kwargs(load_config("paper"), "sft", tmp_path, progress=False) | {"deepspeed": str(DS_JSON)}
    try:
        targs = TrainingArguments(**kwargs)
        assert targs.deepspeed_plugin.zero_stage == 2
    finally:
        unset_hf_deepspeed_config()


# ------------------------------------------------------------------------------------- launcher
def test_resolve_launcher_without_gpus(monkeypatch):
    monkeypatch.setattr(launch, "visible_gpus", lambda: 0)
    assert launch.resolve_launcher("auto") == ("none", 1)
    assert launch.resolve_launcher("auto", 2) == ("torchrun", 2)
    assert launch.resolve_launcher("torchrun", 2) == ("torchrun", 2)
    assert launch.resolve_launcher("none") == ("none", 1)
    with pytest.raises(ValueError, match="torchrun"):
        launch.resolve_launcher("accelerate", 2)
    with pytest.raises(ValueError, match="one process"):
        launch.resolve_launcher("none", 2)
    with pytest.raises(ValueError, match="unknown launcher"):
        launch.resolve_launcher("mpirun")


def test_resolve_launcher_with_gpus(monkeypatch):
    monkeypatch.setattr(launch, "visible_gpus", lambda: 8)
    assert launch.resolve_launcher("auto") == ("accelerate", 8)
    assert launch.resolve_launcher("auto", 4) == ("accelerate", 4)
    assert launch.resolve_launcher("auto", 1) == ("none", 1)
    assert launch.resolve_launcher("torchrun") == ("torchrun", 8)
    with pytest.raises(ValueError, match="only 8 GPU"):
        launch.resolve_launcher("auto", 9)
    monkeypatch.setattr(launch, "visible_gpus", lambda: 1)
    assert launch.resolve_launcher("auto") == ("none", 1)


def test_launch_commands_pick_the_shipped_configs():
    torchrun = launch.launch_command("dcpt", "tiny", {"dcpt.max_steps": 3}, launcher="torchrun", nproc=2)
    assert torchrun[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert torchrun[torchrun.index("--nproc_per_node") + 1] == "2"
    assert torchrun[torchrun.index("-m", 3):] == ["-m", "qilin_lib.train.launch", "dcpt", "--profile", "tiny",
                                                  "--set", "dcpt.max_steps=3"]
    paper = launch.launch_command("sft", "paper", None, launcher="accelerate", nproc=8, force=True)
    assert paper[paper.index("--config_file") + 1].endswith("configs/accelerate_deepspeed_zero2.yaml")
    assert paper[paper.index("--deepspeed_config_file") + 1] == str(DS_JSON)
    assert paper[paper.index("--num_processes") + 1] == "8" and paper[-1] == "--force"
    small = launch.launch_command("dcpt", "gpu-small", None, launcher="accelerate", nproc=2, progress=False)
    assert small[small.index("--config_file") + 1].endswith("configs/accelerate_ddp.yaml")
    assert "--deepspeed_config_file" not in small and small[-1] == "--no-progress"


def test_worker_arguments_round_trip_through_the_cli_parser():
    overrides = {"dcpt": {"learning_rate": 1e-3, "lr_scheduler": "linear", "lora": {"enabled": True}},
                 "seed": 7, "model.name_or_path": "/models/with space", "data.tiny.cpt_mix": {"kg": 0.5, "text": 0.5}}
    argv = ["train", *launch.worker_args("dcpt", "tiny", overrides, force=True, progress=False),
            "--launcher", "torchrun", "--nproc", "2"]
    args = build_parser().parse_args(argv)
    assert (args.stage, args.profile, args.force, args.no_progress) == ("dcpt", "tiny", True, True)
    assert (args.launcher, args.nproc) == ("torchrun", 2)
    assert load_config("tiny", dict(args.set)) == load_config("tiny", overrides)
    assert dict(args.set)["data.tiny.cpt_mix"] == {"kg": 0.5, "text": 0.5}


def test_every_training_stage_goes_through_the_launcher():
    from qilin_lib.train.adapt import run_adapt
    from qilin_lib.train.dcpt import run_dcpt

    for stage in TRAINING_STAGES:  # the one list of stages: the launcher and `qilin train` accept each
        assert launch.stage_function(stage).__name__ == f"run_{stage}"
        assert build_parser().parse_args(["train", stage]).stage == stage
    assert launch.stage_function("dcpt") is run_dcpt and launch.stage_function("adapt") is run_adapt
    with pytest.raises(ValueError, match="unknown stage"):
        launch.stage_function("rlhf")
    adapt = launch.launch_command("adapt", "paper", None, launcher="accelerate", nproc=8)
    assert adapt[adapt.index("-m", 3) + 2] == "adapt" and "--deepspeed_config_file" in adapt  # paper: adapt.deepspeed zero2
    for notebook, stage in (("02_dcpt", "dcpt"), ("03_sft", "sft"), ("04_dpo", "dpo")):
        assert f'run_or_launch("{stage}", profile, overrides' in (REPO / "notebooks" / f"{notebook}.py").read_text("utf-8")
    assert "adapt_after_sft(profile, overrides" in (REPO / "notebooks" / "05_evaluation.py").read_text("utf-8")


def test_the_library_never_imports_its_cli():
    """The CLI sits on top: the launcher and the stages take TRAINING_STAGES and `--set` parsing (parse_override) from qilin_lib.config."""
    code = ("import sys, qilin_lib.train.launch, qilin_lib.train.adapt, qilin_lib.train.dpo; "
            "print('qilin_lib.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_cpu_processes_choose_the_number_of_workers_only_without_gpus(monkeypatch):
    smoke, tiny = load_config("paper-smoke"), load_config("tiny")
    monkeypatch.setattr(launch, "visible_gpus", lambda: 0)
    assert smoke.hardware.cpu_processes == 2 and launch.default_nproc(smoke) == 2
    assert launch.resolve_launcher("auto", launch.default_nproc(smoke)) == ("torchrun", 2)
    assert launch.default_nproc(smoke, 1) == 1 and launch.default_nproc(tiny) is None  # asked for / not set
    monkeypatch.setattr(launch, "visible_gpus", lambda: 4)
    assert launch.default_nproc(smoke) is None                                       # one per GPU instead


def test_run_or_launch_in_process_calls_the_stage_function(monkeypatch):
    from qilin_lib.train.common import StageRun

    calls = []

    def fake_run(cfg, *, force, progress):
        calls.append((cfg, force, progress))
        return StageRun("sft", Path("/x"), {"ok": 1}, reused=False)

    monkeypatch.setattr(launch, "visible_gpus", lambda: 1)
    monkeypatch.setattr(launch, "stage_function", lambda stage: fake_run)
    run = launch.run_or_launch("sft", "tiny", {"sft.epochs": 1.5}, force=True, progress=False)
    assert run.metrics == {"ok": 1}
    (cfg, force, progress), = calls
    assert cfg.sft.epochs == 1.5 and force and not progress


def test_read_stage_run_falls_back_to_the_results_json(sandbox):
    from qilin_lib.paths import artifacts_dir, results_dir

    (artifacts_dir("tiny") / "dcpt-abc").mkdir(parents=True)
    (results_dir("tiny") / "train_dcpt.json").write_text(json.dumps(
        {"stage": "dcpt", "provenance": {"artifact_key": "abc", "world_size": 2}}), "utf-8")
    run = launch.read_stage_run("dcpt", load_config("tiny"))
    assert run.path == artifacts_dir("tiny") / "dcpt-abc" and run.metrics["provenance"]["world_size"] == 2


def test_a_failing_launcher_returns_its_exit_code():
    assert launch._run([sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ)) == 3


# --------------------------------------------------------------------------------- real runs (CPU)
def _cpu_env(sandbox: Path) -> dict:
    env = dict(os.environ, QILIN_ROOT=str(sandbox), QILIN_ARTIFACTS=str(sandbox / "artifacts"),
               CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    env.pop(launch.RESULT_ENV, None)
    return env


@pytest.mark.slow
def test_qilin_train_runs_dcpt_as_two_ddp_processes_over_gloo(sandbox):
    """`qilin train dcpt --launcher torchrun --nproc 2`: two CPU processes, DDP over gloo, the real
    run_dcpt in each; rank 0 writes the results, which report world size 2 and the global batch."""
    from qilin_lib.data.stage import run_data_stage

    cfg = load_config("tiny", TINY)
    run_data_stage(cfg, progress=False)
    cli = [sys.executable, "-m", "qilin_lib.cli", "train", "dcpt", "--profile", "tiny",
           *launch.worker_args("dcpt", "tiny", TINY)[3:], "--launcher", "torchrun", "--nproc", "2", "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(cli, env=_cpu_env(sandbox), capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    print(f"2-process DDP DCPT: {seconds:.1f} s")

    metrics = json.loads((sandbox / "results" / "tiny" / "train_dcpt.json").read_text("utf-8"))
    prov = metrics["provenance"]
    assert prov["world_size"] == 2 and prov["device"].startswith("cpu")
    global_batch = 2 * cfg.dcpt.per_device_batch_size * cfg.dcpt.gradient_accumulation_steps
    assert prov["effective_global_batch"] == global_batch == 4
    assert metrics["global_steps"] == 3 and len(metrics["loss_curve"]) == 3
    if "tokens_trained" in metrics:  # summed over both ranks: each step consumed two distinct batches
        assert metrics["tokens_trained"] == 3 * global_batch * cfg.dcpt.block_size
    assert "[qilin] dcpt trained (world size 2)" in proc.stdout
    art_dir = Path(proc.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    assert art_dir.parent == sandbox / "artifacts" / "tiny" and art_dir.name == f"dcpt-{prov['artifact_key']}"
    assert json.loads((art_dir / "manifest.json").read_text("utf-8"))["complete"] is True
    assert not list(art_dir.parent.glob("*.work")) and not list(art_dir.parent.glob(".*.tmp"))
    assert (sandbox / "figures" / "tiny" / "loss_dcpt.png").exists()


DEEPSPEED_CPU_RUN = r"""
import importlib, json, sys
import torch
# DeepSpeed's torch backend JIT-compiles a shared-memory allreduce (C++, ninja + g++: minutes) whenever the
# CPU accelerator calls the op compatible; None is DeepSpeed's own fallback (plain torch.distributed, gloo).
importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments
from qilin_lib.config import load_config
from qilin_lib.train.common import deepspeed_config_path, training_kwargs

cfg = load_config("tiny", {"dcpt.deepspeed": "zero2", "dcpt.max_steps": 3, "dcpt.per_device_batch_size": 2,
                           "dcpt.gradient_accumulation_steps": 2, "dcpt.logging_steps": 1, "dcpt.warmup_steps": 1})
kwargs = training_kwargs(cfg, "dcpt", sys.argv[1], progress=False)
kwargs.update(deepspeed=deepspeed_config_path(cfg.dcpt.deepspeed), use_cpu=False)  # dropped without a GPU
model = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64))
g = torch.Generator().manual_seed(0)
data = [{"input_ids": (ids := torch.randint(0, 128, (16,), generator=g)), "labels": ids.clone()} for _ in range(32)]
trainer = Trainer(model=model, args=TrainingArguments(**kwargs), train_dataset=data)
trainer.train()
engine = trainer.model_wrapped
print("RESULT " + json.dumps({
    "engine": type(engine).__name__, "zero_stage": engine.zero_optimization_stage(),
    "train_batch_size": engine.train_batch_size(), "micro": engine.train_micro_batch_size_per_gpu(),
    "accumulation": engine.gradient_accumulation_steps(), "world_size": engine.world_size,
    "backend": torch.distributed.get_backend(), "scheduler": type(engine.lr_scheduler).__name__,
    "steps": trainer.state.global_step, "device": str(trainer.args.device),
    "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h]}))
"""


@pytest.mark.slow
def test_one_process_deepspeed_zero2_run_on_cpu(sandbox):
    """The shipped ZeRO-2 config drives a real DeepSpeed engine on CPU (DeepSpeed's CPU accelerator, gloo,
    one rank), with the Trainer's torch AdamW: no compiled DeepSpeed op is needed."""
    env = _cpu_env(sandbox) | {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
                               "DS_ACCELERATOR": "cpu"}
    proc = subprocess.run([sys.executable, "-c", DEEPSPEED_CPU_RUN, str(sandbox / "out")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads(next(line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")))
    assert result["engine"] == "DeepSpeedEngine" and result["zero_stage"] == 2
    assert result["backend"] == "gloo" and result["device"].startswith("cpu") and result["world_size"] == 1
    assert result["train_batch_size"] == result["micro"] * result["accumulation"] * result["world_size"] == 4
    assert result["steps"] == 3 and len(result["losses"]) == 3
    assert all(loss == loss and loss < 10 for loss in result["losses"])  # finite, near ln(128) = 4.85


# ------------------------------------------------------------------------------------------ GPUs
@pytest.mark.gpu
def test_accelerate_deepspeed_launch_on_one_gpu(sandbox):
    """`qilin train dcpt --launcher accelerate` with the ZeRO-2 config on one GPU (the multi-GPU path,
    one rank). Not run on the CPU machine this was written on."""
    from qilin_lib.data.stage import run_data_stage

    if launch.visible_gpus() < 1:
        pytest.skip("needs a CUDA device")
    overrides = {**TINY, "dcpt.deepspeed": "zero2"}
    run_data_stage(load_config("tiny", overrides), progress=False)
    env = _cpu_env(sandbox)
    env.pop("CUDA_VISIBLE_DEVICES")
    cli = [sys.executable, "-m", "qilin_lib.cli", "train", "dcpt", "--profile", "tiny",
           *launch.worker_args("dcpt", "tiny", overrides)[3:], "--launcher", "accelerate", "--nproc", "1",
           "--no-progress"]
    proc = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    metrics = json.loads((sandbox / "results" / "tiny" / "train_dcpt.json").read_text("utf-8"))
    assert metrics["provenance"]["device"].startswith("cuda") and metrics["global_steps"] == 3
