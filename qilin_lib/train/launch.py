"""One training stage on several processes: `qilin train <stage>` and the notebooks' multi-GPU path.

    run = run_or_launch("sft", "paper", overrides)   # in-process on <= 1 GPU, else `accelerate launch`
    code = launch_stage("dcpt", "tiny", {"dcpt.max_steps": 3}, nproc=2, launcher="torchrun")

`run_dcpt` / `run_sft` / `run_dpo` are written for one process. The Trainer makes them data-parallel by itself
when a distributed launcher started the process (it reads RANK / WORLD_SIZE / LOCAL_RANK), so the
multi-process path is the same function started N times through this module's worker entry point:

    torchrun --standalone --nproc_per_node N -m qilin_lib.train.launch <stage> --profile P --set k=v ...
    accelerate launch --config_file qilin_lib/configs/accelerate_<ddp|deepspeed_zero2>.yaml \
        --num_processes N -m qilin_lib.train.launch <stage> --profile P --set k=v ...

Launcher choice (`launcher="auto"`): in-process when at most one process is asked for (by default one per
visible GPU); `accelerate launch` on several GPUs, with the DeepSpeed config when the stage's profile
section sets `deepspeed` (the paper profile: ZeRO-2, as the authors trained) and plain DDP otherwise;
`torchrun` with the gloo backend for several CPU processes (how the tests run DDP without a GPU).

Only global rank 0 writes results and figures (`publish` in train/common.py checks
`trainer.is_world_process_zero()`). Rank 0 also hands its StageRun to the launching process through a JSON
file ($QILIN_LAUNCH_RESULT), which is how `run_or_launch` returns the same StageRun on both paths.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..cache import atomic_write_json
from ..config import TRAINING_STAGES, ProfileConfig, _flatten, load_config, parse_override
from ..paths import PACKAGE_DIR, artifacts_dir, results_dir

if TYPE_CHECKING:
    from .common import StageRun

# .common imports torch: imported where needed, so that `qilin --help` stays fast
LAUNCHERS = ("auto", "none", "torchrun", "accelerate")
CONFIG_DIR = PACKAGE_DIR / "configs"
RESULT_ENV = "QILIN_LAUNCH_RESULT"   # where global rank 0 writes its StageRun for the launching process
WORKER_MODULE = "qilin_lib.train.launch"


class LaunchFailed(RuntimeError):
    """A multi-process stage run exited non-zero (its workers' tracebacks are in the output above)."""

    def __init__(self, stage: str, profile: str, code: int):
        super().__init__(f"multi-process {stage} run (profile {profile}) failed with exit code {code}")
        self.code = code


# -------------------------------------------------------------------------------------- devices
def visible_gpus() -> int:
    """CUDA devices this process may use (CUDA_VISIBLE_DEVICES respected); 0 without CUDA."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def global_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def stage_function(stage: str) -> Callable[..., "StageRun"]:
    """`run_<stage>` from qilin_lib.train.<stage>, imported only when asked for."""
    if stage not in TRAINING_STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(TRAINING_STAGES)}")
    return getattr(importlib.import_module(f"qilin_lib.train.{stage}"), f"run_{stage}")


def default_nproc(cfg: ProfileConfig, nproc: int | None = None) -> int | None:
    """Processes to start when the caller names none: one per visible GPU (None), or on a machine without
    GPUs the profile's `hardware.cpu_processes` when it asks for more than one."""
    if nproc is None and cfg.hardware.cpu_processes > 1 and not visible_gpus():
        return cfg.hardware.cpu_processes
    return nproc


def resolve_launcher(launcher: str = "auto", nproc: int | None = None) -> tuple[str, int]:
    """(launcher, number of processes) that a request means on this machine; "none" = in-process."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    gpus = visible_gpus()
    n = nproc if nproc is not None else max(gpus, 1)
    if n < 1:
        raise ValueError(f"nproc must be at least 1, got {n}")
    if gpus and n > gpus:
        raise ValueError(f"{n} processes asked for but only {gpus} GPU(s) are visible")
    if launcher == "none":
        if n > 1:
            raise ValueError(f"launcher 'none' runs one process; {n} need torchrun or accelerate")
        return "none", 1
    if launcher == "auto":
        return ("none", 1) if n == 1 else ("accelerate" if gpus else "torchrun", n)
    if launcher == "accelerate" and not gpus:
        # accelerate's multi-CPU mode goes through mpirun/oneCCL; torchrun + gloo needs nothing extra
        raise ValueError("launcher 'accelerate' needs GPUs; use --launcher torchrun for CPU processes (gloo)")
    return launcher, n


# ------------------------------------------------------------------------------------- commands
def worker_args(stage: str, profile: str, overrides: dict | None = None, *, force: bool = False,
                progress: bool = True) -> list[str]:
    """Arguments of the worker entry point. Values travel as Python literals (repr), which `--set` parses
    back with ast.literal_eval: strings stay strings, numbers stay numbers."""
    args = [stage, "--profile", profile]
    for key, value in _flatten(overrides or {}).items():
        args += ["--set", f"{key}={value!r}"]
    return args + (["--force"] if force else []) + ([] if progress else ["--no-progress"])


def accelerate_config(cfg: ProfileConfig, stage: str) -> tuple[Path, str | None]:
    """The shipped accelerate yaml for a stage, and the DeepSpeed JSON it runs with (None for DDP)."""
    from .common import deepspeed_config_path

    name = getattr(cfg, stage).deepspeed
    if not name:
        return CONFIG_DIR / "accelerate_ddp.yaml", None
    yaml_path = CONFIG_DIR / f"accelerate_deepspeed_{name}.yaml"
    if not yaml_path.exists():
        raise FileNotFoundError(f"{yaml_path}: no shipped accelerate config for DeepSpeed config {name!r}")
    return yaml_path, deepspeed_config_path(name)


def launch_command(stage: str, profile: str, overrides: dict | None = None, *, launcher: str, nproc: int,
                   force: bool = False, progress: bool = True) -> list[str]:
    """The command line that starts `nproc` workers (launcher: "torchrun" or "accelerate")."""
    worker = ["-m", WORKER_MODULE, *worker_args(stage, profile, overrides, force=force, progress=progress)]
    if launcher == "torchrun":
        # --standalone: a local rendezvous on a free port, so concurrent runs never collide on 29500
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc_per_node", str(nproc), *worker]
    if launcher == "accelerate":
        yaml_path, ds_json = accelerate_config(load_config(profile, overrides), stage)
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(yaml_path),
               "--num_processes", str(nproc), "--main_process_port", str(_free_port())]
        if ds_json:  # absolute path: the yaml's relative one only works from the repo root
            cmd += ["--deepspeed_config_file", ds_json]
        return cmd + worker
    raise ValueError(f"no command for launcher {launcher!r}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------ launching
def launch_stage(stage: str, profile: str = "tiny", overrides: dict | None = None, nproc: int | None = None,
                 launcher: str = "auto", *, force: bool = False, progress: bool = True,
                 result_file: str | os.PathLike | None = None) -> int:
    """Run a stage and return its exit code: in-process when the launcher resolves to "none", else as
    `nproc` worker processes (blocking). `result_file`: where rank 0 writes its StageRun as JSON."""
    kind, n = resolve_launcher(launcher, default_nproc(load_config(profile, overrides), nproc))
    if kind == "none":
        run = stage_function(stage)(load_config(profile, overrides), force=force, progress=progress)
        if result_file:
            _write_result(result_file, run, world_size=1)
        return 0
    prepare_shared_inputs(load_config(profile, overrides))
    cmd = launch_command(stage, profile, overrides, launcher=kind, nproc=n, force=force, progress=progress)
    env = dict(os.environ)
    # the workers import this package even when the launching process runs elsewhere (a notebook dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_DIR.parent), env.get("PYTHONPATH")) if p)
    if result_file:
        env[RESULT_ENV] = str(result_file)
    print(f"[qilin] launching {n} processes: {' '.join(cmd)}", flush=True)
    return _run(cmd, env)


def prepare_shared_inputs(cfg: ProfileConfig) -> None:
    """Build, once and in this process, what every worker would otherwise build at the same moment: the
    tiny profile's tokenizer + untrained model, or the converted Baichuan checkpoint (`model.convert`): N
    ranks writing one cache directory would race. CPU only; a hub id without `convert` is returned untouched.
    Fails early, with one message instead of N tracebacks, when the data stage has not run."""
    from .common import base_model_dir

    base_model_dir(cfg)


def _run(cmd: list[str], env: dict) -> int:
    """Run the launcher in its own process group so that an interrupt (a notebook's stop button) reaches
    every worker it started, not only the launcher."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return proc.wait()
    except BaseException:
        for sig, grace in ((signal.SIGINT, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        raise


def run_or_launch(stage: str, cfg_profile: str = "tiny", overrides: dict | None = None, force: bool = False,
                  progress: bool = True, *, nproc: int | None = None, launcher: str = "auto") -> "StageRun":
    """What a notebook calls: the stage in-process on one device, through a launcher on several GPUs;
    the same StageRun either way."""
    cfg = load_config(cfg_profile, overrides)
    kind, _ = resolve_launcher(launcher, nproc := default_nproc(cfg, nproc))
    if kind == "none":
        return stage_function(stage)(cfg, force=force, progress=progress)
    with tempfile.TemporaryDirectory(prefix="qilin-launch-") as tmp:
        result_file = Path(tmp) / "result.json"
        code = launch_stage(stage, cfg_profile, overrides, nproc, launcher, force=force, progress=progress,
                            result_file=result_file)
        if code != 0:
            raise LaunchFailed(stage, cfg_profile, code)
        return read_stage_run(stage, load_config(cfg_profile, overrides), result_file)


def read_stage_run(stage: str, cfg: ProfileConfig, result_file: str | os.PathLike | None = None) -> "StageRun":
    """The StageRun of a finished multi-process run: rank 0's hand-off file when there is one, else
    results/<profile>/train_<stage>.json and the artifact its provenance names."""
    from .common import StageRun

    if result_file and Path(result_file).exists():
        data = json.loads(Path(result_file).read_text("utf-8"))
        return StageRun(stage=data["stage"], path=Path(data["path"]), metrics=data["metrics"],
                        reused=data["reused"])
    results = results_dir(cfg.name) / f"train_{stage}.json"
    if not results.exists():
        raise FileNotFoundError(f"{results}: the {stage} run wrote no results")
    metrics = json.loads(results.read_text("utf-8"))
    path = artifacts_dir(cfg.name) / f"{stage}-{metrics['provenance']['artifact_key']}"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: the artifact named by {results} is missing")
    return StageRun(stage=stage, path=path, metrics=metrics, reused=False)


def _write_result(path: str | os.PathLike, run: "StageRun", world_size: int) -> None:
    atomic_write_json(path, {"stage": run.stage, "path": str(run.path), "reused": run.reused,
                             "metrics": json.loads(json.dumps(run.metrics, default=str)),
                             "world_size": world_size})


# ------------------------------------------------------------------------------- worker process
def add_stage_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments `qilin train` and the worker share."""
    parser.add_argument("stage", choices=TRAINING_STAGES)
    parser.add_argument("--profile", default="tiny", help="tiny, gpu-small, paper or a .yaml path")
    parser.add_argument("--set", type=parse_override, action="append", default=[], help="config override a.b=value")
    parser.add_argument("--force", action="store_true", help="retrain even if the artifact exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: one process of a (possibly) multi-process stage run."""
    parser = argparse.ArgumentParser(prog=f"python -m {WORKER_MODULE}", description=main.__doc__)
    args = add_stage_arguments(parser).parse_args(argv)
    cfg = load_config(args.profile, dict(args.set))
    run = stage_function(args.stage)(cfg, force=args.force, progress=not args.no_progress)
    if global_rank() == 0 and os.environ.get(RESULT_ENV):
        _write_result(os.environ[RESULT_ENV], run, world_size=int(os.environ.get("WORLD_SIZE", "1")))
    _destroy_process_group()
    return 0


def _destroy_process_group() -> None:
    """Leave the process group cleanly (torch warns at exit otherwise); a no-op in a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # rank 0 may still be writing results while the others are done
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
