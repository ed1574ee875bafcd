"""What every training stage shares against stale caches and lost work: artifact keys that cover the code
that trains a stage, resuming only from checkpoints that can be resumed from, a writability check before
any work, and a stop at the first non-finite loss. (The real runs behind these are in tests/test_train_*.py.)"""

import math
import os
import shutil

import pytest
from transformers import TrainerState

from qilin_lib import paths
from qilin_lib.config import TRAINING_STAGES as STAGES
from qilin_lib.config import load_config
from qilin_lib.train.common import (
    SHARED_CODE,
    STAGE_CODE,
    NonFiniteError,
    NonFiniteGuard,
    StageNotTrained,
    StageRun,
    last_complete_checkpoint,
    stage_artifact,
    tokens_seen,
)

INPUTS = {"data": "d0", "base_model": "m0"}
SMALL = {"model.vocab_size": 400, "model.hidden_size": 64, "model.num_layers": 2, "model.num_heads": 2,
         "model.intermediate_size": 128, "model.max_position_embeddings": 128}


@pytest.fixture
def cfg():
    return load_config("tiny", SMALL)


def keys(cfg):
    return {stage: stage_artifact(cfg, stage, INPUTS).key for stage in STAGES}


# ------------------------------------------------------------------------------------ cache keys
@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """The modules the stage keys hash, copied under tmp_path, which source_hash then reads."""
    copy = tmp_path / "qilin_lib"
    for rel in {*SHARED_CODE, *(m for modules in STAGE_CODE.values() for m in modules)}:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(paths.PACKAGE_DIR / rel, copy / rel)
    monkeypatch.setattr(paths, "PACKAGE_DIR", copy)
    return copy


def test_each_stage_key_covers_its_own_module():
    for stage in ("dcpt", "sft", "dpo"):
        assert f"train/{stage}.py" in STAGE_CODE[stage]


def test_stage_keys_are_stable_for_unchanged_code(cfg, sandbox):
    assert keys(cfg) == keys(cfg)
    code = paths.source_hash(*SHARED_CODE, *STAGE_CODE["sft"])
    assert stage_artifact(cfg, "sft", INPUTS).inputs == INPUTS | {"code": code}


@pytest.mark.parametrize("module, changed", [
    ("train/sft.py", {"sft", "adapt", "dpo"}),           # DPO tokenises with SFT's rule
    ("train/adapt.py", {"adapt"}),
    ("train/dpo.py", {"dpo"}),
    ("train/dcpt.py", {"dcpt"}),
    ("data/packing.py", {"dcpt"}),
    ("train/common.py", set(STAGES)),
    ("modeling.py", set(STAGES)),
])
def test_stage_keys_follow_the_code_that_trains_them(cfg, sandbox, package_copy, module, changed):
    before = keys(cfg)
    assert keys(cfg) == before  # the copy hashes as the package does: names and content, not location
    with open(package_copy / module, "a", encoding="utf-8") as fh:
        fh.write("\n# a fix\n")
    after = keys(cfg)
    assert {stage for stage in STAGES if after[stage] != before[stage]} == changed


def test_tiny_base_model_key_follows_modeling_code(cfg, sandbox, package_copy):
    from qilin_lib.modeling import tiny_base_model

    texts = ["高血压常见头痛。", "糖尿病常见口渴。", "Take care."] * 20
    path = tiny_base_model(cfg, texts, input_hash="abc")
    assert tiny_base_model(cfg, texts, input_hash="abc") == path
    with open(package_copy / "modeling.py", "a", encoding="utf-8") as fh:
        fh.write("\n# a tokenizer fix\n")
    rebuilt = tiny_base_model(cfg, texts, input_hash="abc")
    assert rebuilt != path and (rebuilt / "manifest.json").exists()


# ---------------------------------------------------------------------------------------- resume
GOOD_STATE = '{"global_step": 4, "num_input_tokens_seen": 400}'


def checkpoint(work, step, *, state=GOOD_STATE, weights=True):
    path = work / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if state is not None:
        (path / "trainer_state.json").write_text(state)
    if weights:
        (path / "adapter_model.safetensors").write_bytes(b"weights")
    return path


@pytest.mark.parametrize("broken", [
    {"state": '{"global_step": 8, "log_hist'},      # truncated
    {"state": ""},                                  # empty
    {"state": "[]"},                                # not a trainer state
    {"state": None},                                # interrupted before the state was written
    {"weights": False},                             # state without weights
])
def test_last_complete_checkpoint_skips_a_broken_newest_one(tmp_path, broken):
    good = checkpoint(tmp_path, 4)
    checkpoint(tmp_path, 8, **broken)
    assert last_complete_checkpoint(tmp_path) == str(good)
    assert tokens_seen(str(good)) == 400


def test_last_complete_checkpoint_reads_undecodable_state_and_full_models(tmp_path):
    assert last_complete_checkpoint(tmp_path / "missing") is None
    bad = checkpoint(tmp_path, 2)
    (bad / "trainer_state.json").write_bytes(b"\xff\xfe\x00garbage")
    assert last_complete_checkpoint(tmp_path) is None
    full = checkpoint(tmp_path, 3, weights=False)
    (full / "model.safetensors").write_bytes(b"weights")  # DCPT trains the whole model
    assert last_complete_checkpoint(tmp_path) == str(full)
    assert tokens_seen(None) == 0


# ----------------------------------------------------------------------------------- writability
@pytest.mark.parametrize("kind", ["results", "figures", "artifacts"])
def test_ensure_writable_names_the_directory(sandbox, kind):
    paths.ensure_writable("tiny")  # creates all three
    target = sandbox / kind / "tiny"
    shutil.rmtree(target)
    target.write_text("a file where the directory should be")
    with pytest.raises(PermissionError, match=f"{target}: the {kind} directory of profile 'tiny'"):
        paths.ensure_writable("tiny")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only (mode 0555) directory anyway; "
                                              "test_ensure_writable_names_the_directory covers root")
def test_ensure_writable_refuses_a_read_only_directory(sandbox):
    paths.ensure_writable("tiny")
    target = sandbox / "figures" / "tiny"
    target.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=str(target)):
            paths.ensure_writable("tiny")
    finally:
        target.chmod(0o755)


def stage_call(stage, cfg, tmp_path):
    """Each stage's run function with inputs that do not exist: only a check made before any work can
    fail with PermissionError rather than on loading them."""
    from qilin_lib.train.dcpt import run_dcpt
    from qilin_lib.train.dpo import run_dpo
    from qilin_lib.train.sft import run_sft

    missing = tmp_path / "no-model"
    return {"dcpt": lambda **kw: run_dcpt(cfg, corpus=["文本"], base_model=missing, progress=False, **kw),
            "sft": lambda **kw: run_sft(cfg, dataset=[], base_model=missing, progress=False, **kw),
            "dpo": lambda **kw: run_dpo(cfg, dataset=[], sft_run=StageRun("sft", missing, {}, False),
                                        progress=False, **kw)}[stage]


@pytest.mark.parametrize("stage", ["dcpt", "sft", "dpo"])
def test_stages_check_writability_before_any_work(cfg, sandbox, stage):
    (sandbox / "results").mkdir(exist_ok=True)
    (sandbox / "results" / "tiny").write_text("not a directory")
    run = stage_call(stage, cfg, sandbox)
    with pytest.raises(PermissionError, match="results directory of profile 'tiny'"):
        run()
    assert not (sandbox / "artifacts").exists()
    with pytest.raises(StageNotTrained):  # a reuse-only lookup writes nothing and checks nothing
        run(reuse_only=True)


# ------------------------------------------------------------------------------------ non-finite
def test_non_finite_guard_names_stage_and_step():
    guard, state = NonFiniteGuard("sft"), TrainerState(global_step=7)
    guard.on_log(None, state, None, logs={"loss": 2.5, "grad_norm": 1.0, "learning_rate": 1e-4})
    guard.on_log(None, state, None, logs={"train_loss": 2.0})  # the end-of-training summary
    with pytest.raises(NonFiniteError, match=r"^sft: non-finite loss=nan at step 7"):
        guard.on_log(None, state, None, logs={"loss": math.nan, "grad_norm": 1.0})
    with pytest.raises(NonFiniteError, match=r"^sft: non-finite grad_norm=inf at step 7"):
        guard.on_log(None, state, None, logs={"loss": 2.5, "grad_norm": math.inf})
